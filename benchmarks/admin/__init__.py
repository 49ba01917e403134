"""The admin benchmark: the list page on a large table."""
