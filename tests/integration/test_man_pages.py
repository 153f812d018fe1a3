"""The man pages and --help name everything there is (issue 21, item 8).

Read from the code, not from a list kept here: fpmctl's command table, fpmd's getopt
table and the configuration's directive table.
"""
import os
import re
import subprocess

from conftest import FPMCTL, FPMD

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def source(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def man(name):
    """The man page's text with roff's escapes for '-' and fonts taken out."""
    text = source(f"docs/man/{name}")
    text = re.sub(r"\\f[BIRP]", "", text).replace("\\-", "-").replace("\\&", "")
    # .BR a b c: alternating fonts, words run together only by the macro
    return text


def has_word(text, word):
    return re.search(r"(?<![\w.-])" + re.escape(word) + r"(?![\w-])", text) is not None


def fpmctl_commands():
    names = re.findall(r'\{ "([a-z]+)", ctl_\w+_main,', source("src/ctl/fpmctl.c"))
    assert len(names) >= 10, names
    return names


def fpmd_options():
    """(long, short) of every option in fpmd's getopt table."""
    opts = re.findall(r'\{ "([a-z-]+)", \w+_argument, NULL, \'(\w)\' \}', source("src/master/main.c"))
    assert len(opts) >= 15, opts
    return opts


def directives():
    names = set(re.findall(r'\.name = "([^"]+)"', source("src/conf/conf_directives.c")))
    assert len(names) >= 80, names
    return sorted(names)


def test_every_fpmctl_command_in_help_and_man_page():
    help_text = subprocess.run([FPMCTL, "--help"], capture_output=True, text=True).stdout
    page = man("fpmctl.1")
    missing = [(c, where) for c in fpmctl_commands()
               for where, text in (("--help", help_text), ("fpmctl.1", page)) if not has_word(text, c)]
    assert not missing, missing
    # Every command's own --help works.
    for c in fpmctl_commands():
        r = subprocess.run([FPMCTL, c, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "usage: fpmctl" in r.stdout, (c, r.stdout, r.stderr)


def test_every_fpmd_flag_in_help_and_man_page():
    help_text = subprocess.run([FPMD, "--help"], capture_output=True, text=True).stdout
    page = man("fpmd.8")
    missing = []
    for long, short in fpmd_options():
        for where, text in (("--help", help_text), ("fpmd.8", page)):
            if not has_word(text, f"--{long}"):
                missing.append((f"--{long}", where))
            # 'M' is --module-cflags' internal key: it has no short form
            if short != "M" and not has_word(text, f"-{short}"):
                missing.append((f"-{short}", where))
    assert not missing, missing


def test_every_directive_in_fpmd_conf_5_and_configuration_md():
    page = man("fpmd.conf.5")
    doc = source("docs/configuration.md")
    missing = [(d, where) for d in directives()
               for where, text in (("fpmd.conf.5", page), ("configuration.md", doc))
               if not has_word(text, d)]
    assert not missing, missing


def test_fpmd_8_describes_every_app_type_as_available():
    page = man("fpmd.8")
    assert "later version" not in page
    for app in ("php", "cgi", "module", "exec"):
        assert has_word(page, app), app
