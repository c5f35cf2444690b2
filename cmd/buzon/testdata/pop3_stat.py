"""Log in over POP3 and print "COUNT SIZE" from STAT.
Usage: pop3_stat.py HOST PORT USER PASSWORD plain|ssl|stls [expect-fail]
With expect-fail, print the server's error instead and exit 0."""
import poplib
import ssl
import sys

host, port, user, password, mode = sys.argv[1:6]
expect_fail = len(sys.argv) > 6
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if mode == "ssl":
    pop = poplib.POP3_SSL(host, int(port), context=ctx)
else:
    pop = poplib.POP3(host, int(port))
    if mode == "stls":
        pop.stls(ctx)
try:
    pop.user(user)
    pop.pass_(password)
except poplib.error_proto as e:
    if expect_fail:
        print(e.args[0].decode())
        sys.exit(0)
    raise
if expect_fail:
    sys.exit("login succeeded")
count, size = pop.stat()
print(count, size)
pop.quit()
