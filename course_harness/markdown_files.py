"""Reading markdown the way GitHub shows it, with markdown-it-py."""

from markdown_it import MarkdownIt


def links(path):
    """Every link target in a markdown file (inline links and images, inside tables too), as written."""
    targets = []
    for token in MarkdownIt().enable("table").parse(path.read_text(encoding="utf-8")):
        for child in token.children or []:
            if child.type == "link_open":
                targets.append(child.attrs["href"])
            if child.type == "image":
                targets.append(child.attrs["src"])
    return targets
