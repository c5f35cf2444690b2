"""What the imaplib scripts share: the server and account from the
command line (HOST PORT USER PASSWORD), and checks that print what passed
and exit non-zero at the first that fails."""
import imaplib
import sys


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def ok(resp, what):
    typ, data = resp
    check(typ == "OK", "%s (%s %r)" % (what, typ, data))
    return data


def login(what="login"):
    """Connects to the server of the command line and logs in."""
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    M = imaplib.IMAP4(host, port)
    ok(M.login(user, password), what)
    return M
