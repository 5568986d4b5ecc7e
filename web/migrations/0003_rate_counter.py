from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0002_call_search")]

    initial = False

    operations = [
        ops.CreateModel(
            name="RateCounter",
            fields=[
                (
                    "key",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("window_start_ms", fields.BigIntField()),
                ("count", fields.IntField(default=0)),
            ],
            options={
                "table": "rate_counter",
                "app": "models",
                "pk_attr": "key",
                "table_description": "A fixed-window request counter, shared by every web process through the database.",
            },
            bases=["Model"],
        ),
    ]
