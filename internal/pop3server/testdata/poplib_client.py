#!/usr/bin/env python3
"""Drive buzon's POP3 server with Python's poplib, a client we did not write.

usage: poplib_client.py MODE HOST PORT USER PASSWORD EXPECTED_DIR [ARG]

EXPECTED_DIR holds one file per message, named by its UIDL, with the bytes
stored. Each mode checks what the server sends against them, exits non-zero
with a message on any difference, and prints a JSON summary on stdout.

modes:
  download-delete  plain POP3, USER/PASS: RETR and DELE every message, QUIT
  keep             POP3S (certificate not verified): RETR every message, QUIT
  delete-later     POP3S: DELE the messages whose UIDLs ARG lists (comma
                   separated), QUIT
  stls             STLS verifying the certificate in the CA file ARG, then
                   TOP n 0 and TOP n 2 of every message, QUIT
  uidl             print the UIDL listing
  deleted          plain POP3: log in, say so on stdout, wait for a line on
                   stdin (the test deletes the account meanwhile), then
                   RETR 1 and NOOP, printing the error each gets
"""

import json
import os
import poplib
import ssl
import sys


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def expected(directory):
    out = {}
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = f.read()
    return out


def uidls(pop):
    resp, lines, _ = pop.uidl()
    out = {}
    for line in lines:
        num, uid = line.decode().split()
        out[int(num)] = uid
    return out


def unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def retr_all(pop, want):
    """RETR every message and compare it with the stored bytes."""
    count, size = pop.stat()
    if count != len(want) or size != sum(len(b) for b in want.values()):
        fail("STAT says %d messages, %d octets; stored %d, %d"
             % (count, size, len(want), sum(len(b) for b in want.values())))
    ids = uidls(pop)
    listing = {int(l.split()[0]): int(l.split()[1]) for l in pop.list()[1]}
    for num, uid in sorted(ids.items()):
        if uid not in want:
            fail("UIDL %s of message %d is not one stored" % (uid, num))
        if listing[num] != len(want[uid]):
            fail("LIST %d says %d octets; stored %d" % (num, listing[num], len(want[uid])))
        resp, lines, octets = pop.retr(num)
        got = b"\r\n".join(lines) + b"\r\n"
        if got != want[uid]:
            fail("RETR %d differs from the stored message %s" % (num, uid))
        if octets != len(want[uid]):
            fail("RETR %d: poplib counted %d octets; stored %d" % (num, octets, len(want[uid])))
    return ids


def main():
    mode, host, port, user, password, directory = sys.argv[1:7]
    arg = sys.argv[7] if len(sys.argv) > 7 else ""
    port = int(port)
    want = expected(directory)

    if mode == "download-delete":
        pop = poplib.POP3(host, port, timeout=60)
        pop.user(user)
        pop.pass_(password)
        ids = retr_all(pop, want)
        for num in ids:
            pop.dele(num)
        if pop.stat()[0] != 0:
            fail("STAT after DELE of every message is not 0")
        pop.quit()
        print(json.dumps({"retrieved": sorted(ids.values())}))

    elif mode == "keep":
        pop = poplib.POP3_SSL(host, port, timeout=60, context=unverified())
        pop.user(user)
        pop.pass_(password)
        ids = retr_all(pop, want)
        pop.quit()
        print(json.dumps({"retrieved": sorted(ids.values())}))

    elif mode == "delete-later":
        pop = poplib.POP3_SSL(host, port, timeout=60, context=unverified())
        pop.user(user)
        pop.pass_(password)
        doomed = set(arg.split(","))
        deleted = []
        for num, uid in uidls(pop).items():
            if uid in doomed:
                pop.dele(num)
                deleted.append(uid)
        if set(deleted) != doomed:
            fail("UIDLs %s not found on the server" % sorted(doomed - set(deleted)))
        pop.quit()
        print(json.dumps({"deleted": sorted(deleted)}))

    elif mode == "stls":
        pop = poplib.POP3(host, port, timeout=60)
        caps = pop.capa()
        for cap in ("STLS", "TOP", "UIDL", "USER", "PIPELINING"):
            if cap not in caps:
                fail("CAPA lacks %s: %s" % (cap, caps))
        ctx = ssl.create_default_context(cafile=arg)
        pop.stls(context=ctx)
        if "STLS" in pop.capa():
            fail("STLS still offered over TLS")
        pop.user(user)
        pop.pass_(password)
        for num, uid in uidls(pop).items():
            header, _, body = want[uid].partition(b"\r\n\r\n")
            for n in (0, 2):
                resp, lines, _ = pop.top(num, n)
                got = b"\r\n".join(lines) + b"\r\n"
                wanted = header + b"\r\n\r\n" + b"".join(body.splitlines(keepends=True)[:n])
                if got != wanted:
                    fail("TOP %d %d: got %r, want %r" % (num, n, got[:200], wanted[:200]))
        pop.quit()
        print(json.dumps({"tls": True}))

    elif mode == "uidl":
        pop = poplib.POP3(host, port, timeout=60)
        pop.user(user)
        pop.pass_(password)
        ids = uidls(pop)
        pop.quit()
        print(json.dumps({"uidl": [ids[n] for n in sorted(ids)]}))

    elif mode == "deleted":
        pop = poplib.POP3(host, port, timeout=60)
        pop.user(user)
        pop.pass_(password)
        print("logged in", flush=True)
        sys.stdin.readline()
        errors = []
        for cmd in (lambda: pop.retr(1), pop.noop):
            try:
                cmd()
                fail("a command succeeded on a deleted account")
            except (poplib.error_proto, OSError) as e:
                errors.append(str(e.args[0].decode() if isinstance(e.args[0], bytes) else e))
        print(json.dumps({"errors": errors}))

    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
