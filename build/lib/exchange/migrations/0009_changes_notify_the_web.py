"""Every committed change of a pair, an API token or a user's access announces itself on `exchange_changes`,
so each web process empties the caches it keeps of them (`exchange.listener`). Triggers rather than signals:
a change made by the admin, a management command, the shell or plain SQL is announced alike, and only once
it is committed."""
from django.db import migrations

CREATE = """
CREATE FUNCTION exchange_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('exchange_changes', TG_ARGV[0]);
    RETURN NULL;
END $$;
CREATE TRIGGER exchange_pairs_changed AFTER INSERT OR UPDATE OR DELETE ON exchange_tradingpair
    FOR EACH STATEMENT EXECUTE FUNCTION exchange_announce_change('pairs');
CREATE TRIGGER exchange_tokens_changed AFTER UPDATE OR DELETE ON authtoken_token
    FOR EACH STATEMENT EXECUTE FUNCTION exchange_announce_change('tokens');
CREATE TRIGGER exchange_users_deleted AFTER DELETE ON auth_user
    FOR EACH STATEMENT EXECUTE FUNCTION exchange_announce_change('users');
-- Only what authentication and permissions read: a login updates last_login, and that changes nothing cached.
CREATE TRIGGER exchange_users_access_changed AFTER UPDATE ON auth_user FOR EACH ROW
    WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active OR OLD.is_staff IS DISTINCT FROM NEW.is_staff
          OR OLD.is_superuser IS DISTINCT FROM NEW.is_superuser OR OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION exchange_announce_change('users');
"""

DROP = """
DROP TRIGGER exchange_users_access_changed ON auth_user;
DROP TRIGGER exchange_users_deleted ON auth_user;
DROP TRIGGER exchange_tokens_changed ON authtoken_token;
DROP TRIGGER exchange_pairs_changed ON exchange_tradingpair;
DROP FUNCTION exchange_announce_change();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("exchange", "0008_order_notional_fits_any_fills"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
