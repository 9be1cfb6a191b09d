"""The catalogue: the 2022 procurement item catalogue (品目) and attribute templates (参数模板)."""
