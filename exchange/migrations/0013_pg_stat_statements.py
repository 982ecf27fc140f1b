"""pg_stat_statements in the database, where the server loads it and the role may create it (the embedded server
does both; elsewhere a superuser runs `CREATE EXTENSION pg_stat_statements`, docs/production.md): the source of
/admin/slow-queries. Nothing changes where it is not possible."""
from django.db import DatabaseError, migrations, transaction


def create_statement_statistics(apps, schema_editor) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_preload_libraries")
        if "pg_stat_statements" not in cursor.fetchone()[0]:
            return
        try:
            with transaction.atomic(using=connection.alias):      # a refusal leaves the migration's transaction
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        except DatabaseError:
            pass


class Migration(migrations.Migration):
    dependencies = [("exchange", "0012_engine_command_republish")]

    operations = [migrations.RunPython(create_statement_statistics, migrations.RunPython.noop)]
