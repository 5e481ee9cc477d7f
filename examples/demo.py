"""End-to-end demo on loopback: a state directory and two districts.

Run with `make demo`. Everything happens under ./demo-homes (removed first), with real `satchel`
processes on free loopback ports (in development mode, which allows plain http on loopback), and ends by
stopping every node cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from node.peers import fetch_descriptor

ROOT = Path(__file__).resolve().parent
WORK = Path.cwd() / "demo-homes"
SATCHEL = str(Path(sys.executable).with_name("satchel"))
DATA = ROOT / "data"

DISTRICTS = {
    "a": dict(domain="springfield.k12.example", name="Springfield School District 186", state="IL",
              city="Springfield", zip="62701", nces_id="1737650", admin="ada", coordinator="jane",
              contact=("Jane Doe", "Registrar", "+1 217-555-0100")),
    "b": dict(domain="shelbyville.k12.example", name="Shelbyville Community Unit 4", state="IL",
              city="Shelbyville", zip="62565", nces_id="1736030", admin="sam", coordinator="bo",
              contact=("Bo Brown", "Transfer Coordinator", "+1 217-555-0199")),
}  # fmt: skip


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


DEV_ENV = {**os.environ, "SATCHEL_FEDERATION_DEV_LOOPBACK": "1"}
DIRECTORY = dict(domain="directory.isbe.example", name="State Board of Education (demo)", state="IL",
                 city="Springfield", zip="62777")  # fmt: skip


def satchel(home: Path, *args: str, quiet: bool = False) -> str:
    print("    $ satchel " + " ".join(a if " " not in a else repr(a) for a in args), flush=True)
    result = subprocess.run(
        [SATCHEL, *args, "--home", str(home)], capture_output=True, text=True, env=DEV_ENV
    )
    if result.returncode != 0:
        sys.exit(f"demo failed: satchel {' '.join(args)}\n{result.stdout}{result.stderr}")
    for line in [] if quiet else result.stdout.rstrip().splitlines():
        print(f"      {line}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_up(key: str) -> tuple[Path, str]:
    d = DISTRICTS[key]
    home, url = WORK / d["domain"], f"http://127.0.0.1:{free_port()}"
    step(f"{d['name']}: IT creates the node")
    satchel(home, "init", "--domain", d["domain"], "--name", d["name"], "--state", d["state"],
            "--city", d["city"], "--zip", d["zip"], "--nces-id", d["nces_id"], "--url", url)  # fmt: skip
    admin, coord = d["admin"], d["coordinator"]
    name, title, phone = d["contact"]
    satchel(home, "users", "add", admin, "--email", f"{admin}@{d['domain']}", "--name", admin.title(),
            "--role", "admin")  # fmt: skip
    satchel(home, "users", "add", coord, "--email", f"{coord}@{d['domain']}", "--name", name,
            "--role", "coordinator", "--as", admin)  # fmt: skip
    satchel(home, "contact", "set", "--name", name, "--title", title, "--email", f"{coord}@{d['domain']}",
            "--phone", phone, "--as", coord)  # fmt: skip
    satchel(home, "transfers", "enable", "--as", coord)
    roster = DATA / f"roster-district-{key}"
    if roster.is_dir():
        satchel(home, "roster", "import", str(roster), "--as", coord)
        satchel(home, "students", "list", "--limit", "5")
    return home, url


def start(home: Path, url: str) -> subprocess.Popen[str]:
    port = url.rsplit(":", 1)[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [SATCHEL, "serve", "--home", str(home), "--port", port, "--dev"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening on" not in line:
        sys.exit(f"demo failed: node at {home} did not start: {line!r}")
    print(f"    {line.strip()}", flush=True)
    return proc


async def check_each_other(pairs: list[tuple[str, Path, str]]) -> None:
    async with aiohttp.ClientSession() as session:
        for key, home, url in pairs:
            expected = json.loads(satchel(home, "info", "--json", quiet=True))
            other = next(k for k, _, _ in pairs if k != key)
            step(
                f"{DISTRICTS[other]['name']} fetches {DISTRICTS[key]['domain']}'s descriptor and verifies it"
            )
            seen = await fetch_descriptor(session, url, expected_domain=DISTRICTS[key]["domain"])
            printed = next(k["fingerprint"] for k in expected["keys"] if k["use"] == "identity")
            print(f"      signature verified; signed by {seen.signer.key_id}")
            print(f"      fingerprint {seen.signer.fingerprint} (read out by phone: {printed})")
            if seen.signer.fingerprint != printed or not re.fullmatch(r"[0-9A-Z-]{29}", printed):
                sys.exit("demo failed: fingerprints differ")
            c = seen.descriptor.coordinator
            print(
                f"      transfers {'on' if seen.descriptor.transfers_enabled else 'off'};"
                f" coordinator {c.name if c else '-'} {c.phone if c else ''}"
            )


def set_up_directory() -> tuple[Path, str]:
    d = DIRECTORY
    home, url = WORK / d["domain"], f"http://127.0.0.1:{free_port()}"
    step(f"{d['name']}: the state agency creates its directory")
    satchel(home, "directory", "init", "--domain", d["domain"], "--name", d["name"], "--state", d["state"],
            "--city", d["city"], "--zip", d["zip"], "--url", url)  # fmt: skip
    satchel(home, "users", "add", "olga", "--email", f"olga@{d['domain']}", "--name", "Olga Operator",
            "--role", "admin")  # fmt: skip
    return home, url


def fingerprint_of(home: Path) -> str:
    info = json.loads(satchel(home, "info", "--json", quiet=True))
    return next(k["fingerprint"] for k in info["keys"] if k["use"] == "identity")


def federate(directory: tuple[Path, str], districts: dict[str, tuple[Path, str]]) -> None:
    dir_home, dir_url = directory
    fp = fingerprint_of(dir_home)
    for key, (home, _) in districts.items():
        d = DISTRICTS[key]
        step(f"{d['name']} joins the directory and pins it (fingerprint read out by the state: {fp})")
        satchel(home, "directory", "join", dir_url, "--as", d["admin"])
        satchel(home, "directories", "add", dir_url, "--fingerprint", fp, "--as", d["admin"])
    step("The state operator reviews and approves both districts")
    satchel(dir_home, "directory", "list", "--status", "pending")
    for key in districts:
        satchel(dir_home, "directory", "approve", DISTRICTS[key]["domain"], "--as", "olga")
    step("Springfield's coordinator looks up Shelbyville (every result is verified)")
    satchel(districts["a"][0], "directory", "search", "shelbyville", "--state", "IL")
    satchel(districts["b"][0], "directory", "search", "--state", "IL", quiet=True)
    step("Signed requests both ways (RFC 9421 signatures, verified keys from the directory)")
    satchel(districts["a"][0], "peers", "ping", DISTRICTS["b"]["domain"])
    satchel(districts["b"][0], "peers", "ping", DISTRICTS["a"]["domain"])


def push(districts: dict[str, tuple[Path, str]]) -> None:
    a_home, _ = districts["a"]
    b_home, _ = districts["b"]
    a, b = DISTRICTS["a"], DISTRICTS["b"]
    step(f"{a['name']} holds records for William Thompson (SIS 200101), who moved to {b['name']}")
    iep = WORK / "iep-200101.pdf"
    iep.write_bytes(b"%PDF-1.4 demo IEP for the Satchel walkthrough\n" + os.urandom(256 * 1024))
    satchel(a_home, "documents", "add", "200101", str(iep), "--type", "iep", "--title", "IEP 2025-26",
            "--as", a["coordinator"])  # fmt: skip
    satchel(
        a_home, "assessments", "import", str(DATA / "assessments-district-a.csv"), "--as", a["coordinator"]
    )
    satchel(a_home, "cases", "add", "--student", "200101", "--case-number", "BTAM-2025-031", "--building",
            "Lincoln MS", "--team", "BTAM North", "--case-manager", "K. Lee", "--as", a["coordinator"])  # fmt: skip
    step(f"{a['name']}'s coordinator sends his records (a copy) with a code")
    sent = json.loads(satchel(a_home, "send", "--to", b["domain"], "--student", "200101", "--all-records",
                              "--owner", f"{b['coordinator']}@{b['domain']}", "--note", "IEP review due in October",
                              "--as", a["coordinator"], "--json", quiet=True))  # fmt: skip
    print(
        f"      transfer {sent['transfer_id']}: {sent['students']} student, {sent['records']} records, "
        f"{sent['bytes']:,} bytes sealed and delivered"
    )
    print(
        f"      code {sent['code']} -> read by phone to {sent['coordinator']['name']} "
        f"({sent['coordinator']['phone']})"
    )
    step(f"{b['name']}'s coordinator sees it arrive")
    satchel(b_home, "inbox")
    satchel(b_home, "transfers", "list", "--incoming")
    step("A mistyped code is caught locally and costs no attempt")
    typo = sent["code"][:-1] + ("0" if sent["code"][-1] != "0" else "1")
    result = subprocess.run([SATCHEL, "accept", sent["transfer_id"], "--code", typo, "--as", b["coordinator"],
                             "--home", str(b_home)], capture_output=True, text=True, env=DEV_ENV)  # fmt: skip
    print("      " + result.stderr.strip().splitlines()[0])
    step("The right code opens the envelope into the blob store; the sender gets a signed receipt")
    satchel(b_home, "accept", sent["transfer_id"], "--code", sent["code"], "--as", b["coordinator"])
    satchel(a_home, "transfers", "show", sent["transfer_id"])
    step(f"{b['name']} previews the import: who is new, matched or uncertain (nothing written yet)")
    satchel(b_home, "import", "preview", sent["transfer_id"], "--school", "Riverton Middle School",
            "--as", b["coordinator"])  # fmt: skip
    satchel(b_home, "import", "review", sent["transfer_id"])
    step("The import runs (each student in its own transaction); the sender gets an `imported` receipt")
    satchel(b_home, "import", "run", sent["transfer_id"], "--as", b["coordinator"])
    satchel(b_home, "import", "log", sent["transfer_id"])
    satchel(b_home, "imports", "list")
    satchel(b_home, "students", "show", "B-50017")
    docs = json.loads(satchel(b_home, "documents", "list", "B-50017", "--json", quiet=True))
    satchel(b_home, "documents", "verify", docs[0]["doc_id"])
    step(f"{b['name']}'s coordinator reads the IEP that arrived (checked against its SHA-256, audited)")
    inbox = WORK / "b-read"
    inbox.mkdir(exist_ok=True)
    satchel(b_home, "documents", "get", docs[0]["doc_id"], "-o", str(inbox), "--force", "--as", b["coordinator"])
    assert (inbox / iep.name).read_bytes() == iep.read_bytes(), "the IEP read back differs from the one sent"
    step("The sending district's FERPA record of disclosures, as given to a parent")
    satchel(a_home, "disclosures", "200101", "--text")
    satchel(a_home, "audit", "verify")


def fix_mistakes(districts: dict[str, tuple[Path, str]]) -> None:
    a_home, _ = districts["a"]
    b_home, _ = districts["b"]
    a, b = DISTRICTS["a"], DISTRICTS["b"]
    step(f"Fixing mistakes: {a['name']} finds a page of another child in the IEP it sent, and sends a corrected "
         "version")  # fmt: skip
    [iep] = [d for d in json.loads(satchel(a_home, "documents", "list", "200101", "--json", quiet=True))
             if d["doc_type"] == "iep"]  # fmt: skip
    corrected = WORK / "iep-200101-corrected.pdf"
    corrected.write_bytes(b"%PDF-1.4 demo IEP, corrected\n" + os.urandom(128 * 1024))
    new = json.loads(satchel(a_home, "documents", "replace", iep["doc_id"], str(corrected), "--title",
                             "IEP 2025-26 (corrected)", "--as", a["coordinator"], "--json", quiet=True))  # fmt: skip
    sent = json.loads(satchel(a_home, "send", "--to", b["domain"], "--student", "200101", "--documents",
                              new["doc_id"], "--receiving-sis-id", "200101=B-50017", "--as", a["coordinator"],
                              "--json", quiet=True))  # fmt: skip
    print(f"      transfer {sent['transfer_id']}, code {sent['code']} read by phone")
    satchel(b_home, "accept", sent["transfer_id"], "--code", sent["code"], "--as", b["coordinator"])
    satchel(b_home, "import", "preview", sent["transfer_id"], "--as", b["coordinator"])
    satchel(b_home, "import", "run", sent["transfer_id"], "--as", b["coordinator"])
    step(f"{b['name']} keeps the corrected IEP, linked to the version it replaces; its admin purges the old one "
         "for good (the audit trail of the purge stays)")  # fmt: skip
    satchel(b_home, "documents", "list", "B-50017")
    [old] = [d for d in json.loads(satchel(b_home, "documents", "list", "B-50017", "--json", quiet=True))
             if d["doc_type"] == "iep" and d["superseded_by"]]  # fmt: skip
    satchel(b_home, "purge", old["doc_id"], "--as", b["admin"])
    satchel(b_home, "audit", "--limit", "3")


def pull(districts: dict[str, tuple[Path, str]]) -> None:
    a_home, _ = districts["a"]
    b_home, _ = districts["b"]
    a, b = DISTRICTS["a"], DISTRICTS["b"]
    step(f"Records request: {b['name']} asks {a['name']} for Sophia Ramirez's records")
    out = satchel(b_home, "request", "--from", a["domain"], "--student", "B-50018", "--comments",
                  "enrolled 9/2, grade 7; please send her file", "--as", b["coordinator"])  # fmt: skip
    request_id = out.split()[2]
    step(f"{a['name']} is alerted, sees who is asking and the candidate student, checks a spelling, and releases")
    satchel(a_home, "requests", "list", "--incoming")
    satchel(a_home, "requests", "show", request_id)
    satchel(a_home, "requests", "message", request_id, "We have Sofia Ramirez, born 2012-04-03. Same student?",
            "--as", a["coordinator"])  # fmt: skip
    satchel(b_home, "requests", "message", request_id, "Yes: her mother spells it Sophia.", "--as", b["coordinator"])
    released = satchel(a_home, "requests", "release", request_id, "--student", "200102", "--all-records",
                       "--as", a["coordinator"])  # fmt: skip
    code = released.split("Authentication code: ")[1].split()[0]
    transfer_id = released.split("transfer ")[1].split(".")[0]
    satchel(b_home, "requests", "list", "--outgoing")
    satchel(b_home, "requests", "show", request_id)
    satchel(b_home, "accept", transfer_id, "--code", code, "--as", b["coordinator"])
    satchel(b_home, "import", "preview", transfer_id, "--as", b["coordinator"])
    satchel(b_home, "import", "review", transfer_id)
    review = json.loads(satchel(b_home, "import", "review", transfer_id, "--json", quiet=True))
    if review and review[0]["match_status"] == "uncertain":
        satchel(b_home, "import", "match", transfer_id, review[0]["sender_sis_id"], "--to", "B-50018",
                "--as", b["coordinator"])  # fmt: skip
    satchel(b_home, "import", "run", transfer_id, "--as", b["coordinator"])

    step(f"Transfer code: {a['name']} makes a code for grade 06 of Maplewood Middle School")
    satchel(b_home, "codes", "email-template", "--grade")
    made = json.loads(satchel(a_home, "codes", "create", "--grade", "06", "--school", "Maplewood Middle School",
                              "--for", b["domain"], "--as", a["coordinator"], "--json", quiet=True))  # fmt: skip
    print(f"      code {made['code']} for {made['students']} student(s), read by phone")
    step(f"{b['name']} enters it: the code never travels, only a proof; the records arrive and are previewed")
    claimed = json.loads(satchel(b_home, "claim", made["code"], "--school", "Riverton K-8 Academy",
                                 "--as", b["coordinator"], "--json", quiet=True))  # fmt: skip
    print(
        f"      from {claimed['district']}, {claimed['school']}: {claimed['new']} new, "
        f"{claimed['matched']} matched, {claimed['uncertain']} uncertain"
    )
    satchel(b_home, "import", "review", claimed["transfer_id"])
    review = json.loads(satchel(b_home, "import", "review", claimed["transfer_id"], "--json", quiet=True))
    for student in review:
        if student["match_status"] == "uncertain":
            satchel(b_home, "import", "match", claimed["transfer_id"], student["sender_sis_id"], "--new",
                    "--as", b["coordinator"])  # fmt: skip
    satchel(b_home, "import", "run", claimed["transfer_id"], "--as", b["coordinator"])
    satchel(b_home, "import", "log", claimed["transfer_id"])
    satchel(a_home, "codes", "list")


def safekeeping(districts: dict[str, tuple[Path, str]]) -> None:
    b_home, _ = districts["b"]
    b = DISTRICTS["b"]
    step(f"{b['name']}'s IT backs the node up while it serves, and checks the home (a nightly cron job)")
    backup = WORK / "backups" / b["domain"]
    satchel(b_home, "backup", str(backup), "--as", b["admin"])
    satchel(b_home, "check", "--blobs")
    print(f"    (and the backup, which is a home itself: --home {backup.relative_to(Path.cwd())})")
    satchel(backup, "check", "--blobs")


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    directory = set_up_directory()
    homes = {key: set_up(key) for key in DISTRICTS}
    step("All three nodes start (satchel serve)")
    nodes = {"directory": directory, **homes}
    procs = {key: start(home, url) for key, (home, url) in nodes.items()}
    try:
        asyncio.run(check_each_other([(key, home, url) for key, (home, url) in homes.items()]))
        federate(directory, homes)
        push(homes)
        fix_mistakes(homes)
        pull(homes)
        safekeeping(homes)
    finally:
        step("Every node shuts down cleanly (SIGTERM)")
        for key, proc in procs.items():
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            print(
                f"    {key}: {out.strip().splitlines()[-1] if out.strip() else ''} (exit {proc.returncode})"
            )
            if proc.returncode != 0:
                sys.exit("demo failed: a node did not stop cleanly")
    step("Demo complete")


if __name__ == "__main__":
    main()
