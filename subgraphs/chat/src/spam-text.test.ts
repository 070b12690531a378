import { containsLink, normalizeText, textFingerprint } from "./modules/spam-signals";

describe("spam signals: the text rules", () => {
  it("should give one fingerprint to texts that differ only in case, spacing, accents and invisible characters", () => {
    const same = [
      "Free coins today",
      "FREE   coins\ttoday ",
      "fr\u200Bee co\u00ADins to\u2060day",
      "Frée coïns today",
      "\uFF26ree coins today",
    ];
    expect(new Set(same.map(textFingerprint)).size).toBe(1);
    expect(normalizeText(same[2]!)).toBe("free coins today");
    expect(textFingerprint("Free coins tomorrow")).not.toBe(textFingerprint(same[0]!));
  });

  it("should see links, also hidden with invisible characters, and not ordinary sentences", () => {
    const links = [
      "see www.example.com",
      "HTTPS://x.y/z",
      "join t.me/spam",
      "my site: cheap-pills.shop",
      "exam\u200Bple.com",
      "git+ssh://host",
    ];
    const plain = [
      "I want to. Be nice",
      "hello. me too",
      "e.g. tomorrow",
      "Node.js is fine",
      "3.14 and 2.5",
      "Mr. Smith",
    ];
    expect(links.map(containsLink)).toEqual(links.map(() => true));
    expect(plain.map(containsLink)).toEqual(plain.map(() => false));
  });
});
