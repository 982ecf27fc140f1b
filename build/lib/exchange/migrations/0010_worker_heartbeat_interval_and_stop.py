"""A worker's heartbeat says how often it beats, so it is judged against its own interval, and when it stopped
cleanly, so a stop is known at once instead of after the heartbeat grows old."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("exchange", "0009_changes_notify_the_web"),
    ]

    operations = [
        migrations.AddField(
            model_name="workerheartbeat",
            name="interval_seconds",
            field=models.FloatField(default=2.0, help_text="How often the worker writes its heartbeat."),
        ),
        migrations.AddField(
            model_name="workerheartbeat",
            name="stopped_at",
            field=models.DateTimeField(blank=True, null=True, help_text="When the worker stopped cleanly."),
        ),
    ]
