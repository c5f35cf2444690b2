"""Select INBOX, IDLE, print "idling", then print "EXISTS n" for the first
EXISTS the server sends, and leave. Usage: imap_idle.py HOST PORT USER PASSWORD"""
import imaplib
import sys

host, port, user, password = sys.argv[1:5]
imap = imaplib.IMAP4(host, int(port))
imap.login(user, password)
imap.select("INBOX")
tag = imap._new_tag().decode()
imap.send(f"{tag} IDLE\r\n".encode())
assert imap.readline().startswith(b"+"), "no continuation for IDLE"
print("idling", flush=True)
imap.sock.settimeout(60)
while True:
    line = imap.readline().decode().strip()
    parts = line.split()
    if len(parts) == 3 and parts[0] == "*" and parts[2] == "EXISTS":
        print("EXISTS", parts[1], flush=True)
        break
imap.send(b"DONE\r\n")
imap.logout()
