"""Import side effects: the command line starts without torch, and ``custom_imports`` still
makes every component buildable (registration through the registries' ``locations``).

Each check runs in a fresh interpreter: this test process has imported everything already.
"""

from conftest import TINY_CONFIG, run_python


def test_cli_parser_does_not_import_torch():
    """``mmseg-refiner --help`` builds every subcommand's parser without loading the stack:
    subcommand modules keep torch / mmengine / model imports inside their functions."""
    run_python('import sys, mmseg_refiner.cli as c; c.build_parser(); '
               "heavy = [m for m in ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmseg') "
               'if m in sys.modules]; assert not heavy, heavy')


def test_cli_help_does_not_import_torch():
    out = run_python('''
import sys
from mmseg_refiner.cli import main
try:
    main(['--help'])
except SystemExit as exc:
    assert exc.code == 0, exc.code
assert 'torch' not in sys.modules
print('help ok')
''')
    assert 'refine' in out and 'help ok' in out


def test_package_import_is_lazy():
    run_python('''
import sys, mmseg_refiner
assert 'torch' not in sys.modules and 'mmseg_refiner.models' not in sys.modules
assert callable(mmseg_refiner.init_refiner)  # loads the API on first access
assert 'mmseg_refiner.models' in sys.modules or 'mmseg_refiner.apis' in sys.modules
assert mmseg_refiner.models.DiffusionRefiner.__name__ == 'DiffusionRefiner'
''')


def test_custom_imports_build_components_from_a_host_scope(tmp_path):
    """A host config (default scope mmdet) that only names the plugin in custom_imports builds
    the plugin's hook, model, transform and metric as ``mmseg_refiner.Name``."""
    cfg = tmp_path / 'host.py'
    cfg.write_text(f'''
custom_imports = dict(imports=['mmseg_refiner'], allow_failed_imports=False)
default_scope = 'mmdet'
custom_hooks = [dict(type='mmseg_refiner.SegRefinerHook', refiner_config={TINY_CONFIG!r})]
''')
    run_python(f'''
from mmengine.config import Config
from mmengine.registry import HOOKS, METRICS, MODELS, TRANSFORMS, init_default_scope
cfg = Config.fromfile({str(cfg)!r})
init_default_scope(cfg.default_scope)
hook = HOOKS.build(cfg.custom_hooks[0])
assert type(hook).__name__ == 'SegRefinerHook', hook
backbone = Config.fromfile({TINY_CONFIG!r}).model.backbone
backbone.type = 'mmseg_refiner.' + backbone.type
assert type(MODELS.build(backbone)).__name__ == 'SegRefinerUNet'
from mmseg_refiner.apis import init_refiner  # what the hook calls, here in the mmdet scope
import warnings
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    assert type(init_refiner({TINY_CONFIG!r})).__name__ == 'DiffusionRefiner'
assert type(TRANSFORMS.build(dict(type='mmseg_refiner.PackRefinerInputs'))).__name__ \\
    == 'PackRefinerInputs'
assert type(METRICS.build(dict(type='mmseg_refiner.RefinerMetric'))).__name__ == 'RefinerMetric'
''')


def test_every_component_is_registered_through_locations():
    """What the registries' ``locations`` import registers everything the package defines, so
    lazy registration misses nothing (a new module must be imported by its subpackage)."""
    run_python('''
import pkgutil
import mmseg_refiner
from mmengine.registry import Registry
from mmseg_refiner import registry as reg

registries = {n: r for n, r in vars(reg).items() if isinstance(r, Registry)}
for r in registries.values():
    r.import_from_location()
lazy = {n: set(r.module_dict) for n, r in registries.items()}
for info in pkgutil.walk_packages(mmseg_refiner.__path__, 'mmseg_refiner.'):
    __import__(info.name)
full = {n: set(r.module_dict) for n, r in registries.items()}
missing = {n: sorted(full[n] - lazy[n]) for n in full if full[n] - lazy[n]}
assert not missing, f'registered only when their module is imported directly: {missing}'
assert full['MODELS'] and full['HOOKS'] and full['TRANSFORMS'] and full['DATASETS']
''')


def test_importing_the_package_installs_no_warning_filters():
    run_python('''
import os, pkgutil, sys, warnings
callers = []
def recording(original):
    def wrapper(*args, **kwargs):
        callers.append(sys._getframe(1).f_code.co_filename)
        return original(*args, **kwargs)
    return wrapper
warnings.filterwarnings = recording(warnings.filterwarnings)
warnings.simplefilter = recording(warnings.simplefilter)
import mmseg_refiner
package = os.path.dirname(mmseg_refiner.__file__)
for info in pkgutil.walk_packages(mmseg_refiner.__path__, 'mmseg_refiner.'):
    __import__(info.name)
ours = [c for c in callers if c.startswith(package)]
assert not ours, ours  # the stack may set filters; the package sets none
''')


def test_entry_points_filter_the_stacks_known_warnings_narrowly(tmp_path):
    """What our entry points call: pkg_resources' deprecation (mmengine resolving an
    ``mmdet::`` base) is gone; the same message from elsewhere still shows."""
    cfg = tmp_path / 'host.py'
    cfg.write_text("_base_ = ['mmdet::_base_/default_runtime.py']\n")
    code = f'''
import warnings
from mmseg_refiner.utils.stack_warnings import filter_stack_warnings
filter_stack_warnings()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('default')
    filter_stack_warnings()
    from mmengine.config import Config
    Config.fromfile({str(cfg)!r})
    warnings.warn('pkg_resources is deprecated as an API', UserWarning)  # from elsewhere
messages = [str(w.message) for w in caught if 'pkg_resources' in str(w.message)]
assert len(messages) == 1, messages
'''
    run_python(code)


def test_inference_loads_mmcv_ops_on_first_use():
    """``mmcv.ops`` (compiled extensions) is imported by the function that runs NMS, not when
    the inference modules are imported."""
    run_python('''
import sys
import mmseg_refiner.inference.reference, mmseg_refiner.inference.strategies
assert 'mmcv.ops' not in sys.modules
''')
