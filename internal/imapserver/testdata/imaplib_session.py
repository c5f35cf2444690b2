#!/usr/bin/env python3
"""Drive buzon's IMAP server with Python's imaplib, an independent client.

Usage: imaplib_session.py HOST PORT USER PASSWORD
Exits non-zero with a message when the server does not behave.
"""
import imaplib
import re
import time

from imapcheck import check, login, ok

M = login()

# APPEND with flags and a date, then STATUS and SEARCH.
msg = b"From: py@example.org\r\nSubject: from imaplib\r\n\r\nhello from python\r\n"
date = imaplib.Time2Internaldate(time.mktime((2024, 5, 6, 7, 8, 9, 0, 0, -1)))
data = ok(M.append("INBOX", r"(\Flagged $Py)", date, msg), "append with flags")
check(b"APPENDUID" in data[0], "APPENDUID in %r" % data)
ok(M.append("INBOX", None, None, b"Subject: second\r\n\r\nsecond\r\n"), "second append")
data = ok(M.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)"), "status")
check(re.search(rb"MESSAGES 2\b", data[0]) and re.search(rb"UNSEEN 2\b", data[0]), "status counts %r" % data)

typ, data = M.select("INBOX")
check(typ == "OK" and data == [b"2"], "select says 2 messages: %r" % data)
data = ok(M.search(None, "FLAGGED"), "search flagged")
check(data == [b"1"], "flagged is message 1: %r" % data)
data = ok(M.search(None, '(SUBJECT "second")'), "search subject")
check(data == [b"2"], "subject second is message 2: %r" % data)
data = ok(M.search(None, "BODY", "python"), "search body")
check(data == [b"1"], "body search: %r" % data)
# SORT (RFC 5256): "from imaplib" sorts before "second"; message 1's
# internal date is in 2024, message 2's now.
data = ok(M.sort("(SUBJECT)", "UTF-8", "ALL"), "sort by subject")
check(data == [b"1 2"], "sorted by subject: %r" % data)
data = ok(M.sort("(REVERSE ARRIVAL)", "UTF-8", "ALL"), "sort by arrival, newest first")
check(data == [b"2 1"], "newest first: %r" % data)
data = ok(M.uid("SORT", "(SIZE)", "UTF-8", "UNFLAGGED"), "uid sort unflagged")
check(len(data[0].split()) == 1, "one unflagged: %r" % data)
data = ok(M.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"), "fetch")
check(b"$Py" in data[0][0] and b"\\Flagged" in data[0][0], "flags kept: %r" % data[0][0])
check(re.search(rb"INTERNALDATE \" ?[67]-May-2024", data[0][0]), "date kept: %r" % data[0][0])
check(data[0][1] == msg, "body bytes equal")

# UID EXPUNGE removes only the UID named.
ok(M.store("1:2", "+FLAGS", r"(\Deleted)"), "mark both deleted")
ok(M.uid("EXPUNGE", "2"), "uid expunge")
typ, data = M.response("EXPUNGE")
check(data == [b"2"], "expunged message 2 only: %r" % data)
data = ok(M.search(None, "ALL"), "search all")
check(data == [b"1"], "one left: %r" % data)
ok(M.store("1", "-FLAGS", r"(\Deleted)"), "undelete")

# MOVE to a folder with a UTF-8 name (modified UTF-7 on the wire).
ok(M.create("&AMk-t&AOk-"), "create Été in modified UTF-7")
data = ok(M.uid("MOVE", "1", "&AMk-t&AOk-"), "uid move")
typ, data = M.status("&AMk-t&AOk-", "(MESSAGES)")
check(typ == "OK" and b"MESSAGES 1" in data[0], "moved message arrived: %r" % data)
data = ok(M.list('""', "*"), "list")
check(any(b'"&AMk-t&AOk-"' in l or b"&AMk-t&AOk-" in l for l in data), "UTF-7 name listed: %r" % data)
M.logout()

# The same folder through UTF8=ACCEPT.
M = login("login again")
ok(M.enable("UTF8=ACCEPT"), "enable UTF8=ACCEPT")
data = ok(M.list('""', "*"), "list in UTF-8")
check(any("Été".encode() in l for l in data), "UTF-8 name listed: %r" % data)
ok(M.create('"Ünïcødé/子"'), "create with UTF-8")
typ, data = M.select('"Été"')
check(typ == "OK" and data == [b"1"], "select by UTF-8 name: %r" % data)
M.logout()
print("PASS")
