keep;
redirect "a@example.org";
