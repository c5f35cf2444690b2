require ["fileinto","copy","mailbox","imap4flags","body","relational","comparator-i;ascii-numeric","regex","date","index","variables","envelope","subaddress"];
# rule:[Receipts]
if allof (header :contains "subject" "invoice", address :domain :is "from" "example.com")
{
	fileinto :create "Receipts";
}
# rule:[Big]
if size :over 100K
{
	fileinto "Big";
	stop;
}
# rule:[Plus addressing]
if envelope :detail "to" "*"
{
	fileinto :create "Plus/${1}";
}
if envelope :matches :detail "to" "*"
{
	fileinto :create "Plus/${1}";
}
# rule:[Labels]
if header :count "ge" :comparator "i;ascii-numeric" "x-label" "2"
{
	addflag "$label2";
}
# rule:[Old]
if date :value "lt" :originalzone "date" "date" "2026-11-25"
{
	fileinto "Old";
}
# rule:[Mention]
if body :text :contains ["bob", "unsubscribe"]
{
	setflag "\\Flagged";
	fileinto :copy "Mentions";
}
# rule:[Name]
if address :matches :localpart "from" "*"
{
	set :lower :upperfirst "sender" "${1}";
	fileinto "People/${sender}";
}
# rule:[Regex]
if not header :regex "subject" "^(re|fwd?):"
{
	addflag "new-thread";
}
# rule:[Second received]
if header :index 2 :matches "received" "from *"
{
	set "relay" "${1}";
}
if string :is "${relay}" ""
{
	addflag "local";
}
