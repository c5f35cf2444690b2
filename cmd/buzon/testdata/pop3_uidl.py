"""Print the UIDL listing of a maildrop. Usage: pop3_uidl.py HOST PORT USER PASSWORD"""
import poplib
import sys

host, port, user, password = sys.argv[1:5]
pop = poplib.POP3(host, int(port))
pop.user(user)
pop.pass_(password)
for line in pop.uidl()[1]:
    print(line.decode())
pop.quit()
