"""A POP3 client that leaves mail on the server, as Thunderbird, Outlook and
phones do when set to "leave a copy on the server", written with Python's
poplib: it remembers the UIDLs it has downloaded in a state file, downloads
only new ones, and deletes those it downloaded more than DAYS days ago
(the client-side "delete after N days"; -1 keeps everything).

Usage: poplib_leave_on_server.py HOST PORT USER PASSWORD STATEFILE plain|stls|ssl DAYS

The state file is JSON: {uidl: unix time of download}. Prints JSON:
{"stat": [count, octets], "capa": [...], "messages": [{"num", "uidl",
"size", "retr": null or {"len", "sha256"}, "dele"}]}.
"""
import hashlib
import json
import os
import poplib
import ssl
import sys
import time

host, port, user, password, statefile, mode, days = sys.argv[1:8]
days = int(days)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if mode == "ssl":
    pop = poplib.POP3_SSL(host, int(port), context=ctx, timeout=30)
else:
    pop = poplib.POP3(host, int(port), timeout=30)
    if mode == "stls":
        pop.stls(context=ctx)
capa = sorted(pop.capa().keys())
pop.user(user)
pop.pass_(password)

state = {}
if os.path.exists(statefile):
    with open(statefile) as f:
        state = json.load(f)

count, octets = pop.stat()
sizes = {int(n): int(s) for n, s in (l.split() for l in pop.list()[1])}
uidls = {int(n): u.decode() for n, u in (l.split() for l in pop.uidl()[1])}
if sorted(sizes) != sorted(uidls) or len(sizes) != count:
    sys.exit(f"STAT {count}, LIST {sorted(sizes)} and UIDL {sorted(uidls)} disagree")
if sum(sizes.values()) != octets:
    sys.exit(f"STAT says {octets} octets, LIST adds up to {sum(sizes.values())}")

now = time.time()
out = []
for n in sorted(uidls):
    uidl = uidls[n]
    entry = {"num": n, "uidl": uidl, "size": sizes[n], "retr": None, "dele": False}
    if uidl not in state:
        _, lines, _ = pop.retr(n)
        # poplib strips CRLF and undoes dot-stuffing; rebuild the octets.
        data = b"".join(line + b"\r\n" for line in lines)
        entry["retr"] = {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        state[uidl] = now
    elif days >= 0 and state[uidl] < now - days * 86400:
        pop.dele(n)
        entry["dele"] = True
        del state[uidl]
    out.append(entry)
# Forget what is no longer on the server.
state = {u: t for u, t in state.items() if u in uidls.values()}
pop.quit()
with open(statefile, "w") as f:
    json.dump(state, f)
print(json.dumps({"stat": [count, octets], "capa": capa, "messages": out}))
