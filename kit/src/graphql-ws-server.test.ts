import { SHARED_TEXT_MAX_LENGTH, SHARED_TEXTS_SIZE, SharedTexts } from "./graphql-ws-server";

describe("SharedTexts", () => {
  it("should keep one copy of each text and hand back an equal text", () => {
    const texts = new SharedTexts();
    const query = "subscription { myChatEvents { kind } }";
    expect(texts.share(query)).toBe(query);
    expect(texts.share(`subscription { ${"myChatEvents { kind } }"}`)).toBe(query);
    expect(texts.size).toBe(1);
  });

  it("should forget the oldest text past its size", () => {
    const texts = new SharedTexts();
    for (let index = 0; index <= SHARED_TEXTS_SIZE; index += 1) texts.share(`query ${index}`);
    expect(texts.size).toBe(SHARED_TEXTS_SIZE);
    expect(texts.has("query 0")).toBe(false);
    expect(texts.has("query 1")).toBe(true);
    expect(texts.has(`query ${SHARED_TEXTS_SIZE}`)).toBe(true);
  });

  it("should not keep a text longer than its limit", () => {
    const texts = new SharedTexts();
    const long = "x".repeat(SHARED_TEXT_MAX_LENGTH + 1);
    expect(texts.share(long)).toBe(long);
    expect(texts.size).toBe(0);
  });
});
