"""A new trading pair announces itself to its shard's running worker (NOTIFY exchange_pairs, payload: the
shard), so the worker starts serving it without a restart. A trigger rather than a Django signal: a pair
added by the admin, a fixture, the shell or plain SQL is announced alike, and only once it is committed."""
from django.db import migrations

CREATE = """
CREATE FUNCTION exchange_pair_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('exchange_pairs', NEW.shard::text);
    RETURN NULL;
END $$;
CREATE TRIGGER exchange_pair_added AFTER INSERT ON exchange_tradingpair
    FOR EACH ROW EXECUTE FUNCTION exchange_pair_added();
"""

DROP = """
DROP TRIGGER exchange_pair_added ON exchange_tradingpair;
DROP FUNCTION exchange_pair_added();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("exchange", "0006_trade_without_database_foreign_keys"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
