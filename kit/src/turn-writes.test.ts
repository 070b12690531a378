import net, { type AddressInfo } from "node:net";
import { turnWrites } from "./turn-writes";

describe("turnWrites", () => {
  let server: net.Server;
  let serverSide: Promise<net.Socket>;
  let client: net.Socket;
  let received: Buffer[];

  beforeEach(async () => {
    let accepted: (socket: net.Socket) => void = () => undefined;
    serverSide = new Promise((resolve) => (accepted = resolve));
    server = net.createServer((socket) => accepted(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    received = [];
    client = net.connect((server.address() as AddressInfo).port, "127.0.0.1");
    client.on("data", (chunk: Buffer) => received.push(chunk));
    await new Promise<void>((resolve) => client.once("connect", () => resolve()));
  });

  afterEach(async () => {
    client.destroy();
    (await serverSide).destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const untilReceived = async (bytes: number) => {
    while (Buffer.concat(received).length < bytes) await new Promise((resolve) => setTimeout(resolve, 5));
    return Buffer.concat(received).toString();
  };

  it("should hold a socket's writes until the end of the turn, then send them in order", async () => {
    const socket = await serverSide;
    const writes = turnWrites();
    writes.hold(socket);
    writes.hold(socket); // a second hold in the same turn changes nothing
    socket.write("one,");
    socket.write("two,");
    expect(socket.writableCorked).toBe(1);
    expect(socket.writableLength).toBe(8);
    await new Promise((resolve) => setImmediate(resolve));
    expect(socket.writableCorked).toBe(0);
    socket.write("three");
    expect(await untilReceived(13)).toBe("one,two,three");
  });

  it("should let held sockets write at once on flush, and skip a destroyed socket", async () => {
    const socket = await serverSide;
    const writes = turnWrites();
    writes.hold(socket);
    socket.write("now");
    writes.flush();
    expect(socket.writableCorked).toBe(0);
    expect(await untilReceived(3)).toBe("now");
    socket.destroy();
    writes.hold(socket);
    expect(socket.writableCorked).toBe(0);
  });
});
