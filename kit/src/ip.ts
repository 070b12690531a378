const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** An IPv4 client on a dual-stack socket (`::ffff:a.b.c.d`) as its plain IPv4 address; any other address as it is. */
export function unmapIpv4(ip: string): string {
  return IPV4_MAPPED.exec(ip)?.[1] ?? ip;
}
