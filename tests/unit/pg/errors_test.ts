// TLS failures of a catalog connection, told apart from other failures and
// phrased with the options to check (src/pg/errors.ts). The errors are the
// ones node:tls and npm:pg raise (the certificate case is proven on a real
// server in tests/integration/catalog_guards_test.ts).

import { checkServerIdentity } from "node:tls";
import { assertEquals, assertMatch } from "../../helpers/assert.ts";
import type { ConnConfig } from "../../../src/pg/conn.ts";
import { describeConnectError, tlsFailure } from "../../../src/pg/errors.ts";

const conn = (over: Partial<ConnConfig> = {}): ConnConfig => ({
  host: "db.example.com",
  port: 5432,
  username: "backup",
  password: "s3cret-pw",
  sslMode: "verify-full",
  sslRootCert: "/etc/ssl/pg-ca.crt",
  connectTimeout: 10,
  ...over,
});

/** What node:tls raises when the certificate does not name the host. */
const altnameError = () =>
  checkServerIdentity("db.example.com", {
    subject: { CN: "127.0.0.1" },
    subjectaltname: "IP Address:127.0.0.1, DNS:localhost",
  } as never)!;

/** What node:tls raises when no CA given signed the server's certificate. */
const unsigned = () =>
  Object.assign(new Error("self-signed certificate in certificate chain"), {
    code: "SELF_SIGNED_CERT_IN_CHAIN",
  });

Deno.test("tlsFailure() tells certificate, host name and no-SSL failures from every other error", () => {
  assertEquals(tlsFailure(unsigned()), "certificate");
  assertEquals(
    tlsFailure(Object.assign(new Error("certificate has expired"), { code: "CERT_HAS_EXPIRED" })),
    "certificate",
  );
  assertEquals(tlsFailure(altnameError()), "hostname");
  assertEquals(tlsFailure(new Error("The server does not support SSL connections")), "no-ssl");
  assertEquals(
    tlsFailure(Object.assign(new Error("refused"), { code: "ECONNREFUSED" })),
    undefined,
  );
  assertEquals(tlsFailure(Object.assign(new Error("bad pw"), { code: "28P01" })), undefined);
  assertEquals(tlsFailure(undefined), undefined);
});

Deno.test("a certificate that fails verification names TLS, ssl_root_cert with its path, and ssl_mode, on one line", () => {
  assertEquals(
    describeConnectError(conn(), "app", unsigned()),
    `cannot connect to db.example.com:5432 (database "app") as user "backup": TLS: the server's certificate failed verification (self-signed certificate in certificate chain): check that ssl_root_cert (/etc/ssl/pg-ca.crt) holds the CA that signed it, and ssl_mode (verify-full)`,
  );
  // An inline CA is named by its option: its temp file's path means nothing to the user.
  assertMatch(
    describeConnectError(
      conn({ sslRootCert: "/tmp/plakar-pg-tls-x/ssl_root_cert_data.pem" }),
      "app",
      unsigned(),
    ),
    /check that ssl_root_cert_data holds the CA that signed it/,
  );
  assertMatch(
    describeConnectError(conn({ sslRootCert: undefined }), "app", unsigned()),
    /check that ssl_root_cert \(not set: the system's CAs were used\) holds the CA/,
  );
});

Deno.test("a certificate that does not name the host says so, and how to connect instead", () => {
  const line = describeConnectError(conn(), "app", altnameError());
  assertEquals(
    line,
    `cannot connect to db.example.com:5432 (database "app") as user "backup": TLS: the server's certificate does not name the host "db.example.com" (Hostname/IP does not match certificate's altnames: Host: db.example.com. is not in the cert's altnames: IP Address:127.0.0.1, DNS:localhost): connect by a name the certificate lists, or set ssl_mode=verify-ca (now verify-full) to check only that ssl_root_cert (/etc/ssl/pg-ca.crt) signed it`,
  );
  assertEquals(line.includes("s3cret-pw"), false);
});

Deno.test("other connection errors keep the server's words", () => {
  assertEquals(
    describeConnectError(conn(), "app", new Error('database "app" does not exist')),
    `cannot connect to db.example.com:5432 (database "app") as user "backup": database "app" does not exist`,
  );
});
