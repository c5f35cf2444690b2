#!/usr/bin/env python3
"""SAVEDATE (RFC 8514) and WITHIN (RFC 5032) with Python's imaplib, an
independent client: a message received 60 days ago and moved today has
an old INTERNALDATE and a save date of today, and OLDER/YOUNGER tell
messages apart by their age.

Usage: imaplib_savedate.py HOST PORT USER PASSWORD
Exits non-zero with a message when the server does not behave.
"""
import datetime
import re
import time

import imaplib

from imapcheck import check, login, ok

M = login()
caps = ok(M.capability(), "capability")[0].split()
check(b"SAVEDATE" in caps and b"WITHIN" in caps, "SAVEDATE and WITHIN capabilities: %r" % caps)

now = time.time()
sixty_days_ago = now - 60 * 86400
ok(M.append("INBOX", None, imaplib.Time2Internaldate(sixty_days_ago),
            b"Subject: received long ago\r\n\r\nold\r\n"), "append a message of 60 days ago")
ok(M.append("INBOX", None, imaplib.Time2Internaldate(now),
            b"Subject: received now\r\n\r\nnew\r\n"), "append a message of now")
ok(M.select("INBOX"), "select")


def imap_day(t):
    """The day of a time as a search date, in UTC, which buzon's save
    dates are given in."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%d-%b-%Y")


def save_date(data):
    """The SAVEDATE of a FETCH response, as a time."""
    m = re.search(rb'SAVEDATE "([^"]+)"', data[0])
    check(m is not None, "SAVEDATE in %r" % data)
    return time.mktime(imaplib.Internaldate2tuple(b'INTERNALDATE "' + m.group(1) + b'"'))


data = ok(M.fetch("1", "(SAVEDATE INTERNALDATE)"), "fetch SAVEDATE")
saved = save_date(data)
received = time.mktime(imaplib.Internaldate2tuple(data[0]))
check(abs(saved - now) < 86400, "saved today: %r" % data)
check(abs(received - sixty_days_ago) < 2, "received 60 days ago: %r" % data)

data = ok(M.search(None, "SAVEDON", imap_day(saved)), "search SAVEDON today")
check(data == [b"1 2"], "both saved today: %r" % data)
data = ok(M.search(None, "SAVEDBEFORE", imap_day(saved)), "search SAVEDBEFORE today")
check(data == [b""], "none saved before today: %r" % data)
data = ok(M.search(None, "SAVEDATESUPPORTED"), "search SAVEDATESUPPORTED")
check(data == [b"1 2"], "save dates kept: %r" % data)
data = ok(M.search(None, "OLDER", "86400"), "search OLDER a day")
check(data == [b"1"], "older than a day: %r" % data)
data = ok(M.search(None, "YOUNGER", "86400"), "search YOUNGER a day")
check(data == [b"2"], "younger than a day: %r" % data)
data = ok(M.uid("SEARCH", "YOUNGER", str(90 * 86400)), "uid SEARCH YOUNGER 90 days")
check(data == [b"1 2"], "both younger than 90 days: %r" % data)

# A move keeps the internal date and gives a save date of its own.
ok(M.uid("MOVE", "1", "Trash"), "move the old message to Trash")
ok(M.select("Trash"), "select Trash")
data = ok(M.fetch("1", "(SAVEDATE INTERNALDATE)"), "fetch the moved message")
check(abs(save_date(data) - now) < 86400, "moved today: %r" % data)
check(abs(time.mktime(imaplib.Internaldate2tuple(data[0])) - sixty_days_ago) < 2, "internal date kept: %r" % data)
data = ok(M.search(None, "OLDER", str(30 * 86400), "SAVEDSINCE", imap_day(saved)), "search OLDER and SAVEDSINCE")
check(data == [b"1"], "received long ago, saved today: %r" % data)
try:
    M.search(None, "OLDER", "0")
    check(False, "OLDER 0 refused")
except imaplib.IMAP4.error as e:
    check("BAD" in str(e) or "non-zero" in str(e), "OLDER 0 refused: %s" % e)
ok(M.noop(), "session goes on")
M.logout()
print("PASS")
