"""Manage Sieve scripts with sievelib (python3-sievelib), as Roundcube's
managesieve plugin does with its own client: STARTTLS, PLAIN, then the
script commands. Prints what each step answers, one line each; the
password is read from standard input. SCRIPT is the file of the script
it uploads and activates as "lists".
Usage: sievelib_session.py HOST PORT USER SCRIPT"""
import sys

from sievelib.managesieve import Client

host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(sys.argv[4], newline="") as f:
    script = f.read().replace("\n", "\r\n")
password = sys.stdin.readline().rstrip("\n")
c = Client(host, port)
print("connect", c.connect(user, password, starttls=True, authmech="PLAIN"))
print("implementation", c.get_implementation())
print("fileinto", "fileinto" in c.get_sieve_capabilities())
print("vacation", "vacation" in c.get_sieve_capabilities())
print("havespace", c.havespace("lists", len(script)))
print("putscript", c.putscript("lists", script))
print("putscript other", c.putscript("other", "keep;\r\n"))
print("setactive", c.setactive("lists"))
print("listscripts", c.listscripts())
print("getscript", c.getscript("lists") == script.replace("\r\n", "\n").rstrip("\n"))
print("checkscript", c.checkscript("discard;\r\n"))
print("checkscript vacation", c.checkscript('require "vacation";\r\nvacation "away";\r\n'), c.errcode)
print("deletescript active", c.deletescript("lists"), c.errcode)
print("renamescript", c.renamescript("other", "spare"))
print("deletescript", c.deletescript("spare"))
print("listscripts", c.listscripts())
c.logout()
