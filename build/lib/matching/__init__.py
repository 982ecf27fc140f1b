"""The matching engine: a pure core (books, engine) with no Django, database or Redis imports."""
