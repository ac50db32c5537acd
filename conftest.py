"""Every Python example in the README and under docs/ runs as part of the test suite.

Sybil collects the ```python blocks of each page and runs them in order in one
namespace per page. A page can prepare names with an invisible block
(``<!-- invisible-code-block: python ... -->``); a block that cannot run here is
preceded by ``<!-- skip: next -->``, sparingly and with a reason beside it.
"""

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md"],
).pytest()
