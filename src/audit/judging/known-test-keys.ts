/**
 * Files of upstream packages known to embed public test keys (GnuTLS compiles its FIPS and
 * self-test keys into the library), pinned by the sha256 of the whole file as Debian ships it.
 * A file is exempt here only byte for byte: nothing an image writes can take the exemption,
 * and an image with no recorded base (`kiln audit` of any bookworm image) is not failed by them.
 * Add a row only from a package downloaded from its archive, checked against its .deb.
 */
export const knownTestKeyFiles: ReadonlyMap<string, string> = new Map([
  ["779b25d20249988bea2c1aa6bbeb218f5ae7ea8a9d30ce4f54ea37372965cc4b", "libgnutls30 3.7.9-2+deb12u7 amd64 (self-test keys)"],
  ["3a3db153fe2a03fc4ec3fb71339b1e21bdc797537f3c3d9907082278c5e70da9", "libgnutls30 3.7.9-2+deb12u6 amd64 (self-test keys)"],
  // /etc/ssl/openssl.cnf: its [insta] CMP demo section sets `secret = pass:insta`, a public test password.
  ["7ae8cae2e64856b34c80276deb1dcf60f76da27bc1e00382201ba7bb7dc33311", "openssl 3.0.22-1~deb12u2 (/etc/ssl/openssl.cnf: the CMP demo's public password)"],
]);
