require ["variables", "fileinto"];

if header :matches "subject" "*" {
  fileinto "Archive/${env.name}";
}
