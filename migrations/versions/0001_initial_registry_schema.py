"""Initial registry schema: datasets, clips, captions, splits, feature sets, runs,
checkpoints, scores, predictions, systems and system members.

Revision ID: 0001
Revises: 
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('captions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=False),
    sa.Column('clip_id', sa.String(length=36), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('caption_index', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_captions'))
    )
    op.create_index(op.f('ix_captions_clip_id'), 'captions', ['clip_id'], unique=False)
    op.create_index(op.f('ix_captions_dataset_id_idx'), 'captions', ['dataset_id', 'idx'], unique=False)
    op.create_table('checkpoints',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('is_best', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints'))
    )
    op.create_index(op.f('ix_checkpoints_run_id'), 'checkpoints', ['run_id'], unique=False)
    op.create_table('clips',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('source_split', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('duration', sa.Double(), nullable=False),
    sa.Column('n_frames', sa.Integer(), nullable=False),
    sa.Column('sample_rate', sa.Integer(), nullable=False),
    sa.Column('channels', sa.Integer(), nullable=False),
    sa.Column('tags', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_clips'))
    )
    op.create_index(op.f('ix_clips_dataset_id_idx'), 'clips', ['dataset_id', 'idx'], unique=False)
    op.create_table('datasets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('n_clips', sa.Integer(), nullable=False),
    sa.Column('n_captions', sa.Integer(), nullable=False),
    sa.Column('meta_json', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_datasets')),
    sa.UniqueConstraint('name', name=op.f('uq_datasets_name'))
    )
    op.create_table('feature_sets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('spec_json', sa.Text(), nullable=False),
    sa.Column('model_identity', sa.Text(), nullable=True),
    sa.Column('random_weights', sa.Boolean(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('n_items', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feature_sets')),
    sa.UniqueConstraint('dataset_id', 'name', name=op.f('uq_feature_sets_dataset_id_name'))
    )
    op.create_index(op.f('ix_feature_sets_dataset_id'), 'feature_sets', ['dataset_id'], unique=False)
    op.create_index(op.f('ix_feature_sets_fingerprint'), 'feature_sets', ['fingerprint'], unique=False)
    op.create_table('predictions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=True),
    sa.Column('system_id', sa.String(length=36), nullable=True),
    sa.Column('split', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('clip_id', sa.String(length=36), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('artifact_path', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions'))
    )
    op.create_index(op.f('ix_predictions_run_id'), 'predictions', ['run_id'], unique=False)
    op.create_index(op.f('ix_predictions_system_id'), 'predictions', ['system_id'], unique=False)
    op.create_table('runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('task', sa.String(length=32), nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=True),
    sa.Column('parent_run_id', sa.String(length=36), nullable=True),
    sa.Column('config_json', sa.Text(), nullable=False),
    sa.Column('feature_sets_json', sa.Text(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('random_weights', sa.Boolean(), nullable=False),
    sa.Column('host', sa.Text(), nullable=True),
    sa.Column('git_rev', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    op.create_index(op.f('ix_runs_dataset_id'), 'runs', ['dataset_id'], unique=False)
    op.create_index(op.f('ix_runs_parent_run_id'), 'runs', ['parent_run_id'], unique=False)
    op.create_index(op.f('ix_runs_task'), 'runs', ['task'], unique=False)
    op.create_table('scores',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=True),
    sa.Column('system_id', sa.String(length=36), nullable=True),
    sa.Column('split', sa.String(length=64), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Double(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scores'))
    )
    op.create_index(op.f('ix_scores_run_id_split_metric'), 'scores', ['run_id', 'split', 'metric'], unique=False)
    op.create_index(op.f('ix_scores_system_id'), 'scores', ['system_id'], unique=False)
    op.create_table('splits',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('clip_id', sa.String(length=36), nullable=False),
    sa.Column('recipe', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_splits'))
    )
    op.create_index(op.f('ix_splits_clip_id'), 'splits', ['clip_id'], unique=False)
    op.create_index(op.f('ix_splits_dataset_id_name'), 'splits', ['dataset_id', 'name'], unique=False)
    op.create_table('system_members',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('system_id', sa.String(length=36), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('weight', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_system_members')),
    sa.UniqueConstraint('system_id', 'rank', name=op.f('uq_system_members_system_id_rank'))
    )
    op.create_index(op.f('ix_system_members_run_id'), 'system_members', ['run_id'], unique=False)
    op.create_index(op.f('ix_system_members_system_id'), 'system_members', ['system_id'], unique=False)
    op.create_table('systems',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('query_text', sa.Text(), nullable=False),
    sa.Column('params_json', sa.Text(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('warnings', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_systems')),
    sa.UniqueConstraint('name', name=op.f('uq_systems_name'))
    )


def downgrade() -> None:
    op.drop_table('systems')
    op.drop_index(op.f('ix_system_members_system_id'), table_name='system_members')
    op.drop_index(op.f('ix_system_members_run_id'), table_name='system_members')
    op.drop_table('system_members')
    op.drop_index(op.f('ix_splits_dataset_id_name'), table_name='splits')
    op.drop_index(op.f('ix_splits_clip_id'), table_name='splits')
    op.drop_table('splits')
    op.drop_index(op.f('ix_scores_system_id'), table_name='scores')
    op.drop_index(op.f('ix_scores_run_id_split_metric'), table_name='scores')
    op.drop_table('scores')
    op.drop_index(op.f('ix_runs_task'), table_name='runs')
    op.drop_index(op.f('ix_runs_parent_run_id'), table_name='runs')
    op.drop_index(op.f('ix_runs_dataset_id'), table_name='runs')
    op.drop_table('runs')
    op.drop_index(op.f('ix_predictions_system_id'), table_name='predictions')
    op.drop_index(op.f('ix_predictions_run_id'), table_name='predictions')
    op.drop_table('predictions')
    op.drop_index(op.f('ix_feature_sets_fingerprint'), table_name='feature_sets')
    op.drop_index(op.f('ix_feature_sets_dataset_id'), table_name='feature_sets')
    op.drop_table('feature_sets')
    op.drop_table('datasets')
    op.drop_index(op.f('ix_clips_dataset_id_idx'), table_name='clips')
    op.drop_table('clips')
    op.drop_index(op.f('ix_checkpoints_run_id'), table_name='checkpoints')
    op.drop_table('checkpoints')
    op.drop_index(op.f('ix_captions_dataset_id_idx'), table_name='captions')
    op.drop_index(op.f('ix_captions_clip_id'), table_name='captions')
    op.drop_table('captions')
