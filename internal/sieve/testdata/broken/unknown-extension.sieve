require ["fileinto", "frobnicate"];
keep;
