import { connect } from "node:net";

/**
 * Run by QEMU (`guestfwd=…-cmd:`) for each connection the guest opens to 169.254.169.254:80:
 * joins it (this process's stdin and stdout) to kiln's metadata service on a loopback port.
 */
const port = Number(process.argv[2]);
const socket = connect(port, "127.0.0.1");
process.stdin.pipe(socket);
socket.pipe(process.stdout);
socket.on("error", () => process.exit(1));
socket.on("close", () => process.exit(0));
process.stdin.on("end", () => socket.end());
