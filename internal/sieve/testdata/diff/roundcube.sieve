require ["fileinto","imap4flags","copy","relational","comparator-i;ascii-numeric","body","regex","envelope","date","variables"];
# rule:[Spam]
if anyof (header :contains "x-spam-flag" "YES", header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "10")
{
	fileinto "Junk";
	stop;
}
# rule:[Lists]
if header :contains "list-id" "news.lists.example.com"
{
	fileinto "Lists/News";
	addflag "\\Seen";
}
# rule:[Boss]
if allof (address :is "from" "alice@example.org", not header :contains "subject" "[news]")
{
	fileinto :copy "Important";
	setflag "\\Flagged";
}
# rule:[French]
if header :regex "from" "\\.fr>?$"
{
	fileinto "International";
}
