"""Upload a vacation script with sievelib (python3-sievelib), as
Roundcube's managesieve plugin does when someone turns on the vacation
dialog: STARTTLS, PLAIN, the SIEVE capability read, the script put as
"roundcube" and made active. Prints whether the server names vacation,
then each step's answer; the password is read from standard input.
Usage: sievelib_vacation.py HOST PORT USER SCRIPTFILE"""
import sys

from sievelib.managesieve import Client

host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(sys.argv[4], newline="") as f:
    script = f.read().replace("\n", "\r\n")
password = sys.stdin.readline().rstrip("\n")
c = Client(host, port)
print("connect", c.connect(user, password, starttls=True, authmech="PLAIN"))
caps = c.get_sieve_capabilities()
print("vacation", "vacation" in caps, "vacation-seconds" in caps)
ok = c.putscript("roundcube", script)
print("putscript", ok, "" if ok else getattr(c, "errmsg", b"").decode())
print("setactive", c.setactive("roundcube"))
c.logout()
