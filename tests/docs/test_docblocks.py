"""The block reader and the reader's shell behind the docs test: what they run is what the page says."""

from __future__ import annotations

import os

import pytest

from tests.helpers.docblocks import DirectiveError, ReaderShell, command_blocks

PAGE = """\
# A page

```sh
A=1
```

<!-- test: exit 3; output has "refused" -->
```sh
echo refused; exit 3
```

```yaml
not: a command
```

1. In a list:

   ```sh
   cat > f.txt <<EOF
   x
   EOF
   ```

<!-- test: not run: it needs a network this machine has not got -->
```sh
curl https://example.org
```
"""


def test_blocks_directives_and_indented_heredocs(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    blocks = command_blocks(page)
    assert [b.line for b in blocks] == [3, 8, 18, 25]
    assert blocks[1].exit == 3 and blocks[1].output_has == ["refused"]
    assert blocks[2].text == "cat > f.txt <<EOF\nx\nEOF\n"  # the list's indent is gone, so EOF ends the heredoc
    assert blocks[3].not_run.startswith("it needs a network")
    assert blocks[0].exit == 0 and blocks[0].not_run is None


@pytest.mark.parametrize("directive", ["<!-- test: not run: -->", "<!-- test: exits 3 -->"])
def test_a_bad_directive_is_an_error_not_a_silent_pass(tmp_path, directive):
    page = tmp_path / "page.md"
    page.write_text(f"{directive}\n```sh\ntrue\n```\n")
    with pytest.raises(DirectiveError, match="page.md:2"):
        command_blocks(page)


def test_the_shell_carries_variables_and_folder_and_stops_leftovers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh\nX=kept; mkdir -p sub; cd sub\n```\n\n```sh\necho \"$X $(basename $PWD)\"\n```\n\n"
                    "```sh\nsleep 300 &\n```\n\n```sh\nfalse\necho never\n```\n")
    (tmp_path / "state").mkdir()
    shell = ReaderShell(tmp_path, {"PATH": os.environ["PATH"]}, tmp_path / "state")
    first, second, background, failing = command_blocks(page)
    assert shell.run(first)[0].returncode == 0
    ran, left = shell.run(second)
    assert ran.stdout == "kept sub\n" and not left
    ran, left = shell.run(background)
    assert ran.returncode == 0 and left and "sleep 300" in left[0]
    ran, _ = shell.run(failing)
    assert ran.returncode == 1 and "never" not in ran.stdout  # set -e: a failing command ends its block
