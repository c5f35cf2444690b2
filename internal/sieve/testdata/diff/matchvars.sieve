require ["variables", "fileinto", "envelope"];
if header :matches "List-Id" "*<*.lists.*>" {
  fileinto "Lists/${2}";
}
if address :matches :domain "to" "*.*" {
  fileinto "Domains/${1}-${2}";
}
if header :matches "subject" "*?a*" {
  set "x" "[${0}|${1}|${2}|${3}|${4}]";
  fileinto "S/${x}";
}
if envelope :matches "from" "*@*" {
  fileinto "Senders/${2}/${1}";
}
