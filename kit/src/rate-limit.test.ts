import { addressBudgetKey } from "./rate-limit";

describe("addressBudgetKey", () => {
  it("should keep IPv4 addresses and unwrap IPv4-mapped IPv6 ones", () => {
    expect(addressBudgetKey("203.0.113.7")).toBe("203.0.113.7");
    expect(addressBudgetKey("::ffff:203.0.113.7")).toBe("203.0.113.7");
  });

  it("should count every address of one IPv6 /64 as one", () => {
    const a = addressBudgetKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    const b = addressBudgetKey("2001:0db8:0001:0002::1");
    expect(a).toBe("2001:0db8:0001:0002::/64");
    expect(b).toBe(a);
    expect(addressBudgetKey("2001:db8:1:3::1")).not.toBe(a);
    expect(addressBudgetKey("::1")).toBe("0000:0000:0000:0000::/64");
  });
});
