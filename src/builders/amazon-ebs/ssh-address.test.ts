import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressFor, chosenInterface, onlyByDefaultRoute } from "./ssh-address.js";

// A kernel route table: a default route, the machine's LAN, and a VPN route into 10.20.0.0/16.
const table = [
  "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
  "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
  "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
  "tun0\t0000140A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0",
].join("\n");

describe("the address SSH goes to, and from where", () => {
  it("tells a VPC reached only by the default route from one with a route of its own", () => {
    assert.equal(onlyByDefaultRoute("172.31.0.0", table), true);
    assert.equal(onlyByDefaultRoute("10.20.1.0", table), false, "the VPN's route");
    assert.equal(onlyByDefaultRoute("192.0.2.9", table), false, "the LAN");
    assert.equal(onlyByDefaultRoute("fd00::1", table), undefined);
  });

  it("connects where the group lets it in, and says clearly when the instance has no such address", () => {
    assert.equal(chosenInterface({ associate_public_ip_address: undefined }, false), "private_ip");
    assert.equal(chosenInterface({ associate_public_ip_address: true }, false), "public_ip");
    assert.equal(chosenInterface({ ssh_interface: "public_dns", associate_public_ip_address: false }, false), "public_dns");
    assert.equal(addressFor("i-1", { privateIp: "10.0.0.5" }, "private_ip"), "10.0.0.5");
    assert.throws(() => addressFor("i-1", { privateIp: "10.0.0.5" }, "public_ip"), /instance i-1 has no public IP address to connect to \(ssh_interface public_ip\)/);
  });
});
