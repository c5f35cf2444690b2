"""Write an mbox and a Maildir with Python's mailbox module, for
TestImportPythonMailbox: flags, a sub-folder and dates set through the
module's own API, as a migration script of someone's would."""

import calendar
import mailbox
import os
import sys
import time

out = sys.argv[1]


def message(cls, subject, body):
    return cls("From: py@example.net\nSubject: %s\n\n%s\n" % (subject, body))


box = mailbox.mbox(os.path.join(out, "box.mbox"))
one = message(mailbox.mboxMessage, "mbox one", "From the mbox.")
one.set_from("py@example.net", time.struct_time((2024, 2, 3, 4, 5, 6, 5, 34, 0)))
one.set_flags("ROA")
box.add(one)
two = message(mailbox.mboxMessage, "mbox two", ">not escaped")
two.set_from("py@example.net", time.struct_time((2024, 2, 4, 4, 5, 6, 6, 35, 0)))
two.set_flags("OF")
box.add(two)
box.flush()
box.close()


def at(day):
    return calendar.timegm((2023, 1, day, 3, 4, 5, 0, 0, 0))


md = mailbox.Maildir(os.path.join(out, "Maildir"), create=True)
m = message(mailbox.MaildirMessage, "maildir one", "Cur, seen.")
m.set_subdir("cur")
m.set_flags("S")
m.set_date(at(2))
md.add(m)
m = message(mailbox.MaildirMessage, "maildir two", "New.")
m.set_date(at(3))
md.add(m)
work = md.add_folder("Work.Reports")  # Maildir++: .Work.Reports
m = message(mailbox.MaildirMessage, "maildir three", "In a sub-folder.")
m.set_subdir("cur")
m.set_flags("FRS")
m.set_date(at(4))
work.add(m)
md.close()
