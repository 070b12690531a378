/**
 * Redis pub/sub channel on which Users publishes a user's id after every committed write to that
 * user (profile, visibility, ban, deletion); gateways drop what they cached of that user on it.
 */
export const USER_CHANGED_CHANNEL = "hv:users:changed";
