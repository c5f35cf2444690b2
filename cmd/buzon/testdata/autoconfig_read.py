"""Reads a mail client autoconfiguration answer from standard input as
the clients' own parsers would (xml.etree for Thunderbird's and Outlook's
XML, plistlib for Apple's profile) and prints what a client takes from
it, one line per server, for the Go test to compare.

usage: autoconfig_read.py thunderbird|autodiscover|apple < answer
"""
import plistlib
import sys
import xml.etree.ElementTree as ET

kind = sys.argv[1]
data = sys.stdin.buffer.read()

if kind == "thunderbird":
    root = ET.fromstring(data)
    assert root.tag == "clientConfig" and root.get("version") == "1.1", root.tag
    provider = root.find("emailProvider")
    print("provider", provider.get("id"), provider.findtext("domain"))
    for server in provider.findall("incomingServer") + provider.findall("outgoingServer"):
        print(server.tag, server.get("type"), server.findtext("hostname"), server.findtext("port"),
              server.findtext("socketType"), server.findtext("username"), server.findtext("authentication"))
        assert server.find("password") is None, "a password in the answer"
elif kind == "autodiscover":
    ns = {
        "a": "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
        "o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
    }
    root = ET.fromstring(data)
    assert root.tag == "{%s}Autodiscover" % ns["a"], root.tag
    account = root.find("o:Response/o:Account", ns)
    print("account", account.findtext("o:AccountType", namespaces=ns), account.findtext("o:Action", namespaces=ns))
    for p in account.findall("o:Protocol", ns):
        print("protocol", *(p.findtext("o:" + f, namespaces=ns) for f in
              ("Type", "Server", "Port", "LoginName", "SSL", "Encryption", "SPA", "AuthRequired")))
elif kind == "apple":
    profile = plistlib.loads(data, fmt=plistlib.FMT_XML)
    print("profile", profile["PayloadType"], profile["PayloadVersion"], profile["PayloadIdentifier"], profile["PayloadUUID"])
    for payload in profile["PayloadContent"]:
        for key in sorted(payload):
            print(" ", key, payload[key])
else:
    sys.exit("unknown kind " + kind)
