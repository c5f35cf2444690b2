require ["imap4flags", "fileinto"];
setflag "\\seen $Label1";
addflag ["\\Flagged", "$label1", "Work"];
removeflag "$LABEL1";
if header :contains "subject" "meeting" {
  fileinto :flags ["\\Answered", "Todo"] "Meetings";
}
fileinto "Archive";
addflag "late";
