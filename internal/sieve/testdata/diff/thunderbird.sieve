require ["fileinto", "imap4flags", "envelope", "body", "date", "relational", "variables"];

# Rule: Invoices
if body :content "application/pdf" :contains "JVBER"
{
  fileinto "Invoices";
}

# Rule: Weekend
if date :value "ge" :originalzone "date" "weekday" "5"
{
  addflag "weekend";
}

# Rule: Bulk
if header :is "Precedence" ["bulk", "list", "junk"]
{
  fileinto "Bulk";
  stop;
}

/* Rule: From the boss
   (disabled while on holiday) */
if false
{
  discard;
}

# Rule: Old mail
if currentdate :value "lt" "year" "2000"
{
  discard;
}
