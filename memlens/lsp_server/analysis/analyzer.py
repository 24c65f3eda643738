"""Python source → findings, from the text alone (``ast``; no imports of the user's code,
no torch).

Finds model loads (``X.from_pretrained``/``from_config``, ``pipeline``, memlens's
``load_model(ID, dtype, weights=...)``), layer
constructors inside ``nn.Module`` subclasses with their multiplicities, ``generate``
calls, dtype changes and transformers ``*Config(...)`` constructors. Arguments count
when they are literals, module or local constants, or simple arithmetic on them;
anything else is left unknown.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from memlens.lsp_server.analysis.build_sites import find_builds
from memlens.lsp_server.analysis.dtype_names import CAST_METHODS, dtype_name, static_dtype
from memlens.lsp_server.analysis.evaluator import Evaluator, class_size
from memlens.lsp_server.analysis.findings import (
    Analysis,
    ConfigCall,
    DtypeChange,
    GenerateCall,
    LayerFinding,
    ModelBuild,
    ModelLoad,
    ModuleClass,
    Position,
    Span,
    SubmoduleUse,
    SyntaxProblem,
    TrainingSite,
)
from memlens.lsp_server.analysis.layer_params import LAYERS, PARAMETERLESS
from memlens.lsp_server.analysis.parse_cache import ParseCache
from memlens.lsp_server.analysis.source_index import canonical_name, index_source
from memlens.lsp_server.analysis.static_values import (
    UNKNOWN,
    Scope,
    dotted_name,
    evaluate,
    static_int,
)
from memlens.lsp_server.analysis.tolerant_parse import parse_tolerant
from memlens.lsp_server.analysis.training_sites import find_training_sites
from memlens.lsp_server.analysis.workspace_modules import ModuleLoader
from memlens.profiler.architectures import supported_model_types
from memlens.profiler.tensors import FLOAT_DTYPES

_COMMENT = re.compile(r"#[^\n]*")
_NOT_A_MODEL = re.compile(r"(Tokenizer|Processor|FeatureExtractor|Config|Scheduler)")
_CONFIG_NOT_A_MODEL = {
    "BitsAndBytesConfig",
    "GenerationConfig",
    "AutoConfig",
    "PretrainedConfig",
    "PreTrainedConfig",
    "QuantoConfig",
    "GPTQConfig",
    "AwqConfig",
    "TorchAoConfig",
    "HqqConfig",
}

_LOAD_MODEL = {"memlens.engine.load_model", "memlens.engine.loading.load_model"}
_WEIGHT_CONFIGS = {
    f"memlens.engine{module}.{name}": scheme
    for module in ("", ".weights.config")
    for name, scheme in (("Int8WeightConfig", "int8"), ("Int4WeightConfig", "int4"))
}
_ENGINE_DEFAULT_DTYPE = "bf16"
"""``load_model``'s dtype when the call names none (``torch.bfloat16``)."""


def _position(lines: list[str], lineno: int, byte_col: int) -> Position:
    """ast's 1-based line and UTF-8 byte column → 0-based line, code-point column."""
    line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    return Position(lineno - 1, len(line.encode("utf-8")[:byte_col].decode("utf-8", "ignore")))


def _may_hold_parameters(name: str | None) -> bool:
    """Whether a call in ``__init__`` may create parameters memlens cannot count: another
    ``torch.nn`` module, an ``nn.Parameter``, or a class-like name from elsewhere."""
    if name is None:
        return False
    last = name.rsplit(".", 1)[-1]
    if name.startswith("torch.nn."):
        return last not in PARAMETERLESS
    return last[:1].isupper() and not last.endswith(("Config", "Error", "Exception"))


def _keyword(call: ast.Call, *names: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg in names), None)


def _range_length(call: ast.expr, scope: Scope) -> int | None:
    """``range(n)``/``range(a, b)``/``range(a, b, s)`` with static bounds → its length."""
    if not (isinstance(call, ast.Call) and dotted_name(call.func) == "range" and call.args):
        return None
    bounds = [
        static_int(a, scope) if not isinstance(a, ast.UnaryOp) else evaluate(a, scope)
        for a in call.args
    ]
    numbers = [b for b in bounds if isinstance(b, int) and not isinstance(b, bool)]
    if len(numbers) != len(bounds) or len(numbers) > 3 or (len(numbers) == 3 and numbers[2] == 0):
        return None
    return len(range(*numbers))


def _times(count: int | None, factor: int | None) -> int | None:
    return None if count is None or factor is None else count * factor


class _Analyzer:
    def __init__(self, lines: list[str], tree: ast.Module, loader: ModuleLoader | None) -> None:
        self.lines = lines
        self.tree = tree
        self.evaluator = Evaluator(tree, loader=loader)
        self.builds: list[ModelBuild] = []
        self.index = index_source(tree)
        self.targets = self.index.targets
        self.module_classes = self._module_class_names()
        self.loads: list[ModelLoad] = []
        self.generates: list[GenerateCall] = []
        self.dtype_changes: list[DtypeChange] = []
        self.configs: list[ConfigCall] = []
        self.batch_sizes: list[int] = []
        self.chained_casts: dict[int, str] = {}
        """``id(load call)`` → the dtype a cast chained on it names (``….half()``)."""
        self.classes: list[ModuleClass] = []
        self.training: tuple[TrainingSite, ...] = ()

    def canonical(self, name: str | None) -> str | None:
        return canonical_name(self.index.aliases, name)

    def span(self, node: ast.expr | ast.stmt) -> Span:
        start = _position(self.lines, node.lineno, node.col_offset)
        end = _position(self.lines, node.end_lineno or node.lineno, node.end_col_offset or 0)
        return Span(start, end)

    # -- nn.Module classes -------------------------------------------------------------
    def _module_class_names(self) -> set[str]:
        bases = {
            node.name: {self.canonical(dotted_name(b)) for b in node.bases}
            for node, _ in self.index.classes
        }
        modules: set[str] = set()
        changed = True
        while changed:
            changed = False
            for name, names in bases.items():
                if name not in modules and (
                    names & {"torch.nn.Module", "torch.nn.modules.module.Module"} or names & modules
                ):
                    modules.add(name)
                    changed = True
        return modules

    def _layer(
        self, call: ast.Call, layer: str, owner: str, count: int | None, scope: Scope
    ) -> LayerFinding:
        signature = LAYERS[layer]
        arguments: dict[str, Any] = dict(signature.defaults)
        for param, arg in zip(signature.parameters, call.args, strict=False):
            arguments[param] = evaluate(arg, scope)
        for keyword in call.keywords:
            if keyword.arg is not None:
                arguments[keyword.arg] = evaluate(keyword.value, scope)
        complete = (
            all(p in arguments for p in signature.parameters)
            and not any(isinstance(a, ast.Starred) for a in call.args)
            and all(k.arg is not None for k in call.keywords)
        )
        known = {k: (None if v is UNKNOWN else v) for k, v in arguments.items()}
        params = signature.count(known) if complete else None
        if params is None:  # sized by running the class with its defaults, if at all
            params = self.evaluator.layer_params.get(id(call))
        dtype_keyword = _keyword(call, "dtype")
        dtype = (
            static_dtype(dtype_keyword.value, scope, self.index.aliases)
            if dtype_keyword
            else "fp32"
        )
        return LayerFinding(
            self.span(call),
            layer,
            owner,
            params,
            count,
            dtype if dtype != "auto" else "fp32",
        )

    def _module_findings(self) -> None:
        sizes = {name: class_size(self.evaluator, name) for name in sorted(self.module_classes)}
        layers: dict[str, list[LayerFinding]] = {name: [] for name in self.module_classes}
        uses: dict[str, list[SubmoduleUse]] = {name: [] for name in self.module_classes}
        unknown = dict.fromkeys(self.module_classes, 0)
        for site in self.index.calls:
            if site.owner not in self.module_classes:
                continue
            scope = site.scope.scope()
            count: int | None = 1
            for factor in site.factors:
                count = _times(count, _range_length(factor, scope) if factor else None)
            name = self.canonical(dotted_name(site.call.func))
            if name and name.startswith("torch.nn.") and name[9:] in LAYERS:
                layers[site.owner].append(
                    self._layer(site.call, name[9:], site.owner, count, scope)
                )
            elif name in self.module_classes:
                uses[site.owner].append(SubmoduleUse(self.span(site.call), name, site.owner, count))
            elif _may_hold_parameters(name):
                unknown[site.owner] += 1
        for node, _ in self.index.classes:
            if node.name in self.module_classes:
                start = self.span(node).start
                header = Span(start, Position(start.line, len(self.lines[start.line])))
                self.classes.append(
                    ModuleClass(
                        header,
                        node.name,
                        tuple(layers[node.name]),
                        tuple(uses[node.name]),
                        unknown[node.name],
                        sizes[node.name],
                    )
                )

    # -- loads, generate, dtype changes, configs ----------------------------------------
    def run(self) -> None:
        sites = sorted(self.index.calls, key=lambda c: (c.call.lineno, c.call.col_offset))
        for site in sites:  # configs first: from_config(CONFIG) refers to them
            last = (dotted_name(site.call.func) or "").rsplit(".", 1)[-1]
            if last.endswith("Config") and last not in _CONFIG_NOT_A_MODEL:
                self._config(site.call, last, site.scope.scope())
        for site in sites:
            func = site.call.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call):
                dtype = self._dtype_change(site.call, func.attr, site.scope.scope())
                if dtype is not None:
                    self.chained_casts[id(func.value)] = dtype
        for site in sites:
            self._call(site.call, site.scope.scope())
        self._module_findings()
        self.builds = find_builds(self.evaluator, self.tree, self.index, self.span)
        self.training = find_training_sites(
            self.tree,
            self.lines,
            self.index,
            tuple(sorted(self.loads, key=lambda f: f.span.start)),
            self.span,
            self.insertion,
        )

    def _call(self, call: ast.Call, scope: Scope) -> None:
        name = dotted_name(call.func)
        canonical = self.canonical(name)
        batch = _keyword(call, "batch_size")
        if batch is not None and (size := static_int(batch.value, scope)):
            self.batch_sizes.append(size)
        if isinstance(call.func, ast.Attribute):
            method = call.func.attr
            receiver = dotted_name(call.func.value)
            if method in ("from_pretrained", "from_config") and receiver:
                if not _NOT_A_MODEL.search(receiver.rsplit(".", 1)[-1]):
                    self.loads.append(self._load(call, receiver, method, scope))
                return
            if method == "generate" and receiver:
                tokens = _keyword(call, "max_new_tokens")
                self.generates.append(
                    GenerateCall(
                        self.span(call),
                        receiver,
                        static_int(tokens.value, scope) if tokens else None,
                    )
                )
                return
            if receiver and (dtype := self._dtype_change(call, method, scope)):
                self.dtype_changes.append(DtypeChange(self.span(call), receiver, dtype))
                return
        if canonical in ("transformers.pipeline", "pipeline"):
            self.loads.append(self._load(call, "pipeline", "pipeline", scope))
        elif canonical in _LOAD_MODEL:
            self.loads.append(self._engine_load(call, canonical, scope))

    def _argument(self, call: ast.Call, index: int, name: str) -> ast.expr | None:
        keyword = _keyword(call, name)
        if keyword is not None:
            return keyword.value
        return call.args[index] if len(call.args) > index else None

    def _engine_load(self, call: ast.Call, loader: str, scope: Scope) -> ModelLoad:
        """``load_model(ID, dtype, weights=...)``: ID at that dtype (bf16 when not
        given), compressed as ``weights`` says when it is a config the analysis reads."""
        ref_expr = self._argument(call, 0, "path")
        ref_value = evaluate(ref_expr, scope) if ref_expr is not None else UNKNOWN
        dtype_expr = self._argument(call, 1, "dtype")
        weights = self._argument(call, 2, "weights")
        quantization, group_size = self._engine_weights(weights, scope)
        dtype_kw = _keyword(call, "dtype")
        return ModelLoad(
            span=self.span(call),
            loader=loader,
            model_ref=ref_value if isinstance(ref_value, str) else None,
            dtype=(
                static_dtype(dtype_expr, scope, self.index.aliases)
                if dtype_expr is not None
                else _ENGINE_DEFAULT_DTYPE
            ),
            dtype_keyword=dtype_kw.arg if dtype_kw else None,
            dtype_span=self.span(dtype_expr) if dtype_expr is not None else None,
            insert_at=self._insert_position(call),
            insert_prefix=self._insert_prefix(call),
            quantization=quantization,
            group_size=group_size,
            target=self.index.model_targets.get(id(call)) or self.targets.get(id(call)),
            double_star=any(k.arg is None for k in call.keywords),
        )

    def _engine_weights(self, node: ast.expr | None, scope: Scope) -> tuple[str | None, int | None]:
        """``Int8WeightConfig()`` → (``int8``, None); ``Int4WeightConfig(group_size=64)``
        → (``int4``, 64), also through a name assigned once; anything else (a config
        with other arguments, one the analysis cannot read) → (None, None): no guess."""
        if isinstance(node, ast.Name):
            node = scope.node(node.id)
        if not isinstance(node, ast.Call) or node.args:
            return None, None
        scheme = _WEIGHT_CONFIGS.get(self.canonical(dotted_name(node.func)) or "")
        names = {k.arg for k in node.keywords}
        if scheme == "int8" and not names:
            return scheme, None
        if scheme != "int4" or not names <= {"group_size"}:
            return None, None
        group = _keyword(node, "group_size")
        if group is None:
            return scheme, None
        size = static_int(group.value, scope)
        return (scheme, size) if size is not None else (None, None)

    def _dtype_change(self, call: ast.Call, method: str, scope: Scope) -> str | None:
        if method in CAST_METHODS and not call.args and not call.keywords:
            return dtype_name(method)
        if method != "to":
            return None
        keyword = _keyword(call, "dtype")
        candidates = [keyword.value] if keyword else list(call.args)
        for candidate in candidates:
            dtype = static_dtype(candidate, scope, self.index.aliases)
            if dtype in FLOAT_DTYPES:
                return dtype
        return None

    def _config(self, call: ast.Call, class_name: str, scope: Scope) -> None:
        model_type = class_name.removesuffix("Config").lower()
        if model_type not in supported_model_types():
            return
        fields: dict[str, object] = {"model_type": model_type}
        for keyword in call.keywords:
            if keyword.arg is None:
                return  # **kwargs: fields unknown
            value = evaluate(keyword.value, scope)
            fields[keyword.arg] = None if value is UNKNOWN else value
        if call.args:
            return
        self.configs.append(
            ConfigCall(self.span(call), class_name, model_type, fields, self.targets.get(id(call)))
        )

    def _load(self, call: ast.Call, loader: str, method: str, scope: Scope) -> ModelLoad:
        if method == "pipeline":
            ref_node = _keyword(call, "model")
            ref_expr = (
                ref_node.value if ref_node else (call.args[1] if len(call.args) > 1 else None)
            )
        else:
            names = ("config",) if method == "from_config" else ("pretrained_model_name_or_path",)
            ref_node = _keyword(call, *names)
            ref_expr = ref_node.value if ref_node else (call.args[0] if call.args else None)
        ref_value = evaluate(ref_expr, scope) if ref_expr is not None else UNKNOWN
        config = None
        if method == "from_config" and isinstance(ref_expr, ast.Name):
            config = next((c.fields for c in self.configs if c.target == ref_expr.id), None)
            ref_value = self._pretrained_config_id(scope.node(ref_expr.id), scope)
        elif method == "from_config" and isinstance(ref_expr, ast.Call):
            ref_value = self._pretrained_config_id(ref_expr, scope)
        dtype_kw = _keyword(call, "dtype", "torch_dtype")
        chained = self.chained_casts.get(id(call))
        device_map = _keyword(call, "device_map")
        device_value = evaluate(device_map.value, scope) if device_map else None
        remote = _keyword(call, "trust_remote_code")
        return ModelLoad(
            span=self.span(call),
            loader=f"{loader}.{method}" if method != "pipeline" else "pipeline",
            model_ref=ref_value if isinstance(ref_value, str) else None,
            dtype=chained
            or (static_dtype(dtype_kw.value, scope, self.index.aliases) if dtype_kw else None),
            dtype_keyword=dtype_kw.arg if dtype_kw else None,
            dtype_span=self.span(dtype_kw.value) if dtype_kw else None,
            insert_at=self._insert_position(call),
            insert_prefix=self._insert_prefix(call),
            device_map=device_value if isinstance(device_value, str) else None,
            quantization=self._quantization(call, scope),
            trust_remote_code=bool(remote) and evaluate(remote.value, scope) is True,  # type: ignore[union-attr]
            target=self.targets.get(id(call)),
            double_star=any(k.arg is None for k in call.keywords),
            config=config,
            only_id_and_dtype=(
                method == "from_pretrained"
                and chained is None
                and len(call.args) <= 1
                and all(
                    k.arg in ("pretrained_model_name_or_path", "dtype", "torch_dtype")
                    for k in call.keywords
                )
            ),
        )

    def _pretrained_config_id(self, node: ast.expr | None, scope: Scope) -> Any:
        """``AutoConfig.from_pretrained(ID)`` (or ``XConfig.from_pretrained``) → ID."""
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "from_pretrained"
            and (dotted_name(node.func.value) or "").endswith("Config")
            and node.args
        ):
            return UNKNOWN
        return evaluate(node.args[0], scope)

    def insertion(self, call: ast.Call) -> tuple[Position, str]:
        """Where a new keyword argument of ``call`` goes and what it starts with."""
        return self._insert_position(call), self._insert_prefix(call)

    def _insert_position(self, call: ast.Call) -> Position:
        end = _position(self.lines, call.end_lineno or call.lineno, call.end_col_offset or 1)
        return Position(end.line, max(end.col - 1, 0))

    def _insert_prefix(self, call: ast.Call) -> str:
        arguments: list[ast.AST] = [*call.args, *call.keywords]
        if not arguments:
            return ""
        last = max(arguments, key=lambda a: (a.end_lineno or 0, a.end_col_offset or 0))  # type: ignore[attr-defined]
        after = _position(self.lines, last.end_lineno, last.end_col_offset)  # type: ignore[attr-defined]
        close = self._insert_position(call)
        between = "\n".join(self.lines[after.line : close.line + 1])
        offset_start = after.col
        offset_end = len(between) - (len(self.lines[close.line]) - close.col)
        # Only whitespace, commas and comments lie between the last argument and ")".
        tail = _COMMENT.sub("", between[offset_start:offset_end])
        return " " if "," in tail else ", "

    def _quantization(self, call: ast.Call, scope: Scope) -> str | None:
        for keyword, scheme in (("load_in_8bit", "int8"), ("load_in_4bit", "int4")):
            flag = _keyword(call, keyword)
            if flag is not None and evaluate(flag.value, scope) is True:
                return scheme
        config = _keyword(call, "quantization_config")
        node: ast.expr | None = config.value if config else None
        if isinstance(node, ast.Name):
            node = scope.node(node.id)
        if isinstance(node, ast.Call) and (dotted_name(node.func) or "").endswith(
            "BitsAndBytesConfig"
        ):
            return self._quantization(node, scope)
        return None


def _import_line(tree: ast.Module, lines: list[str]) -> int:
    """The 0-based line a new import goes on: before the first import that is not
    ``__future__``, else after the docstring and ``__future__`` imports, else after the
    leading comments (shebang, encoding)."""
    after = 0
    for statement in tree.body:
        is_docstring = (
            statement is tree.body[0]
            and isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
        )
        is_future = isinstance(statement, ast.ImportFrom) and statement.module == "__future__"
        if is_docstring or is_future:
            after = statement.end_lineno or statement.lineno
            continue
        if isinstance(statement, ast.Import | ast.ImportFrom):
            return statement.lineno - 1
        break
    if after:
        return after
    leading = 0
    while leading < len(lines) and lines[leading].startswith("#"):
        leading += 1
    return leading


def analyze(
    text: str,
    version: int | None = None,
    loader: ModuleLoader | None = None,
    cache: ParseCache | None = None,
    document: str = "",
) -> Analysis:
    """All findings of one document version; never raises on any input text. ``loader``
    gives the workspace modules its imports name (module classes built from them are
    sized; without it they are unknown parts); ``cache`` keeps ``document``'s parsed
    chunks for its next version."""
    parsed = parse_tolerant(text, cache, document)
    analyzer = _Analyzer(parsed.lines, parsed.tree, loader)
    try:
        analyzer.run()
    finally:
        analyzer.evaluator.close()
    problems = tuple(
        SyntaxProblem(
            Span(
                Position(start, 0),
                Position(end, len(parsed.lines[end]) if end < len(parsed.lines) else 0),
            ),
            message,
        )
        for start, end, message in parsed.blanked
    )
    return Analysis(
        version=version,
        loads=tuple(sorted(analyzer.loads, key=lambda f: f.span.start)),
        classes=tuple(analyzer.classes),
        generates=tuple(analyzer.generates),
        dtype_changes=tuple(analyzer.dtype_changes),
        configs=tuple(analyzer.configs),
        builds=tuple(analyzer.builds),
        batch_sizes=tuple(analyzer.batch_sizes),
        training=analyzer.training,
        syntax_problems=problems,
        torch_name=next(
            (
                local
                for local, full in sorted(
                    analyzer.index.aliases.items(), key=lambda item: item[0] != "torch"
                )
                if full == "torch"
            ),
            None,
        ),
        import_line=_import_line(parsed.tree, parsed.lines),
        engine_import=next(
            (
                (
                    analyzer.span(statement),
                    tuple(
                        alias.name + (f" as {alias.asname}" if alias.asname else "")
                        for alias in statement.names
                    ),
                )
                for statement in parsed.tree.body
                if isinstance(statement, ast.ImportFrom)
                and statement.module == "memlens.engine"
                and not statement.level
                and all(alias.name != "*" for alias in statement.names)
            ),
            None,
        ),
    )
