"""Generate an Asterisk cdr_csv Master.csv (18 columns) and the contacts it calls with.

Deterministic (seeded). Contacts get Dutch numbers (landline +3120…, mobile +316…); about 70% of
calls come from or go to a contact, in the national, 0031 or +31 form a PBX writes, the rest are
unknown, anonymous or internal. Ring-all queue calls write two legs sharing a linkedid (21 columns).

    python bench/gen_cdr.py OUT.csv ROWS [--contacts CONTACTS.csv --contact-count 100000]
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path


def contact_number(i: int) -> str:
    return f"+3120{i:07d}" if i % 2 else f"+316{10_000_000 + i:08d}"


def written(e164: str, rng: random.Random) -> str:
    national = "0" + e164[3:]
    return rng.choice([e164, national, "0031" + e164[3:], national])


def generate(out: Path, rows: int, contacts: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    start = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
    with out.open("w", encoding="utf-8", newline="") as f:
        n = 0
        epoch = int(start.timestamp())
        while n < rows:
            epoch += rng.randint(1, 40)
            moment = datetime.fromtimestamp(epoch, UTC)
            stamp = moment.strftime("%Y-%m-%d %H:%M:%S")
            ext = str(100 + rng.randint(0, 40))
            kind = rng.random()
            if kind < 0.7:
                number = written(contact_number(rng.randint(1, contacts)), rng)
            elif kind < 0.85:
                number = f"0{rng.randint(100_000_000, 999_999_999)}"
            elif kind < 0.9:
                number = "anonymous"
            else:
                number = str(100 + rng.randint(0, 40))
            outbound = number.startswith(("0", "+")) and rng.random() < 0.3
            answered = rng.random() < 0.75
            duration = rng.randint(3, 900)
            billsec = max(duration - rng.randint(2, 20), 1) if answered else 0
            end = (moment + timedelta(seconds=duration)).strftime("%Y-%m-%d %H:%M:%S")
            answer = (moment + timedelta(seconds=duration - billsec)).strftime("%Y-%m-%d %H:%M:%S") if answered else ""
            disposition = "ANSWERED" if answered else rng.choice(["NO ANSWER", "NO ANSWER", "BUSY"])
            src, dst = (ext, number) if outbound else (number, ext)
            uid = f"{epoch}.{n}"
            f.write(
                f'"","{src}","{dst}","{"from-internal" if outbound else "from-trunk"}","""{src}"" <{src}>",'
                f'"PJSIP/{src if outbound else "trunk"}-{n:08x}","PJSIP/{"trunk" if outbound else dst}-{n + 1:08x}",'
                f'"Dial","PJSIP/{dst},30","{stamp}",{answer and chr(34) + answer + chr(34)},"{end}",{duration},'
                f'{billsec},"{disposition}","DOCUMENTATION","{uid}",""\n'
            )
            n += 1


def write_contacts(path: Path, count: int) -> None:
    """The relations CSV hub imports (relation,domain,contact_name,email,phone)."""
    with path.open("w", encoding="utf-8") as f:
        f.write("relation,domain,contact_name,email,phone\n")
        for i in range(1, count + 1):
            f.write(f"Relation {i // 3} BV,,Contact {i},,{contact_number(i)}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("rows", type=int)
    parser.add_argument("--contacts", type=Path, default=None)
    parser.add_argument("--contact-count", type=int, default=100_000)
    args = parser.parse_args()
    generate(args.out, args.rows, args.contact_count)
    if args.contacts:
        write_contacts(args.contacts, args.contact_count)


if __name__ == "__main__":
    main()
