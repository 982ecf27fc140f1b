"""A client's own id for an order, unique per owner: a retried placement finds the order it placed the first
time instead of placing a second one."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("exchange", "0010_worker_heartbeat_interval_and_stop"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="client_order_id",
            field=models.CharField(blank=True, max_length=36, null=True,
                                   help_text="The client's own id of the order, unique per owner."),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(condition=models.Q(("client_order_id__isnull", False)),
                                               fields=("owner", "client_order_id"), name="order_client_id_per_owner"),
        ),
    ]
