#!/usr/bin/env python3
"""Man pages for dockbuild, written from the command definitions themselves.

Reads `dockbuild --experimental-dump-help` (ArgumentParser's description of every command, its
arguments, options and flags) on stdin and writes one roff page per command into DIR:
dockbuild.1, dockbuild-build.1, dockbuild-container-run.1, ...

Usage: dockbuild --experimental-dump-help | python3 scripts/gen-man.py DIR [VERSION]
"""
import json
import os
import sys


def esc(text):
    """Text for roff: backslashes doubled, a leading . or ' made literal, one line per line."""
    text = (text or "").replace("\\", "\\e")
    lines = []
    for line in text.split("\n"):
        if line.startswith(".") or line.startswith("'"):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def names(arg):
    out = []
    for n in arg.get("names", []):
        kind, name = n["kind"], n["name"]
        out.append(("-" if kind in ("short", "longWithSingleDash") else "--") + name)
    # short names first, as in docker's pages
    return sorted(out, key=lambda s: (not (s.startswith("-") and not s.startswith("--")), s))


def synopsis(path, cmd):
    parts = []
    for a in cmd.get("arguments", []):
        if not a.get("shouldDisplay", True):
            continue
        if a["kind"] == "positional":
            p = "<" + a.get("valueName", "arg") + ">"
            if a.get("isRepeating"):
                p += " ..."
            parts.append("[" + p + "]" if a.get("isOptional") else p)
    if cmd.get("subcommands"):
        parts.insert(0, "COMMAND")
    return "\\fB" + esc(path) + "\\fR [OPTIONS] " + " ".join(esc(p) for p in parts)


def page(path, cmd, version, children):
    title = path.replace(" ", "-").upper()
    out = [f'.TH "{title}" "1" "" "dockbuild {version}" "dockbuild manual"']
    out += [".SH NAME", f"{esc(path.replace(' ', '-'))} \\- {esc(cmd.get('abstract', ''))}"]
    out += [".SH SYNOPSIS", synopsis(path, cmd)]
    out += [".SH DESCRIPTION", esc(cmd.get("abstract", ""))]
    if cmd.get("discussion"):
        out += [".PP", esc(cmd["discussion"])]
    args = [a for a in cmd.get("arguments", []) if a.get("shouldDisplay", True)]
    positional = [a for a in args if a["kind"] == "positional"]
    options = [a for a in args if a["kind"] != "positional"]
    if positional:
        out.append(".SH ARGUMENTS")
        for a in positional:
            out += [".TP", "\\fI" + esc(a.get("valueName", "arg")) + "\\fR", esc(a.get("abstract", ""))]
    if options:
        out.append(".SH OPTIONS")
        for a in options:
            head = ", ".join("\\fB" + esc(n) + "\\fR" for n in names(a))
            if a["kind"] == "option":
                head += " \\fI" + esc(a.get("valueName", "value")) + "\\fR"
            text = esc(a.get("abstract", ""))
            if a.get("defaultValue") not in (None, ""):
                text += " (default: " + esc(str(a["defaultValue"])) + ")"
            if a.get("isRepeating") and a["kind"] == "option":
                text += " May be given more than once."
            out += [".TP", head, text]
    out += [".TP", "\\fB-h\\fR, \\fB--help\\fR", "Show help information."]
    if children:
        out.append(".SH COMMANDS")
        for child_path, child in children:
            out += [".TP", "\\fB" + esc(child_path.split(" ")[-1]) + "\\fR",
                    esc(child.get("abstract", "")) + " See \\fB" + esc(child_path.replace(" ", "-")) + "\\fR(1)."]
    see = ["dockbuild(1)"] if path != "dockbuild" else []
    parent = " ".join(path.split(" ")[:-1])
    if parent and parent != "dockbuild":
        see.append(parent.replace(" ", "-") + "(1)")
    if see:
        out += [".SH SEE ALSO", ", ".join("\\fB" + s.replace("(1)", "") + "\\fR(1)" for s in see)]
    return "\n".join(out) + "\n"


def walk(cmd, path, pages):
    children = []
    for sub in cmd.get("subcommands", []) or []:
        if not sub.get("shouldDisplay", True):
            continue
        child_path = path + " " + sub["commandName"]
        children.append((child_path, sub))
        walk(sub, child_path, pages)
    pages.append((path, cmd, children))


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: dockbuild --experimental-dump-help | gen-man.py DIR [VERSION]")
    out_dir = sys.argv[1]
    version = sys.argv[2] if len(sys.argv) > 2 else ""
    info = json.load(sys.stdin)
    root = info["command"]
    pages = []
    walk(root, root["commandName"], pages)
    os.makedirs(out_dir, exist_ok=True)
    for path, cmd, children in pages:
        with open(os.path.join(out_dir, path.replace(" ", "-") + ".1"), "w", encoding="utf-8") as f:
            f.write(page(path, cmd, version, children))
    print(f"{len(pages)} man pages in {out_dir}")


if __name__ == "__main__":
    main()
