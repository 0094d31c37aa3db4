from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("deployments", "0006_prod_visibility")]

    operations = [
        migrations.AddField(
            model_name="environment",
            name="apply_fence",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="terraformrun",
            name="fence",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
    ]
