"""Download every message over POP3 into DIR/1, DIR/2, ... and print the count.
Usage: pop3_download.py HOST PORT USER PASSWORD DIR keep|delete"""
import os
import poplib
import sys

host, port, user, password, outdir, mode = sys.argv[1:7]
pop = poplib.POP3(host, int(port))
pop.user(user)
pop.pass_(password)
count, _ = pop.stat()
listed = {int(n): int(size) for n, size in (l.split() for l in pop.list()[1])}
for n in range(1, count + 1):
    _, lines, octets = pop.retr(n)
    # poplib strips CRLF and undoes dot-stuffing; rebuild the octets.
    data = b"".join(line + b"\r\n" for line in lines)
    if len(data) != listed[n]:
        sys.exit(f"message {n}: LIST says {listed[n]} octets, RETR gave {len(data)}")
    with open(os.path.join(outdir, str(n)), "wb") as f:
        f.write(data)
    if mode == "delete":
        pop.dele(n)
pop.quit()
print(count)
