// Jinja semantics against Python's Jinja2: each golden case below was rendered by
// Jinja2 3.1 configured as Hugging Face's `apply_chat_template` configures it
// (trim_blocks, lstrip_blocks, loop controls, its `tojson`), with
// messages=[{"role": "user", "content": "hi"}], bos_token "<s>", eos_token "</s>"
// and strftime_now reading 2026-01-15 09:30. Then errors, undefined values and limits.

#include "text/chat_template.h"
#include "text/jinja_template.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace strata::jinja {
namespace {

struct Golden {
    const char* tmpl;
    const char* expected;
};

const Golden kGolden[] = {
    {R"J({{ none }}|{{ 1.0 }}|{{ [1,'a',none,true, 1.5] }}|{{ {'a':"it's"} }}|{{ 1e20 }}|{{ 1e-5 }}|{{ 10/4 }}|{{ 7//2 }}|{{ -7 % 3 }}|{{ 2**10 }}|{{ 2**-1 }})J",
     R"J(None|1.0|[1, 'a', None, True, 1.5]|{'a': "it's"}|1e+20|1e-05|2.5|3|2|1024|0.5)J"},
    {R"J({{ x is iterable }}{{ x is sequence }}{{ true is number }}{{ true is integer }}{{ x|length }})J",
     R"J(TrueTrueTrueFalse0)J"},
    {R"J({{ {'a': [1, 'é', none, 1.5]}|tojson }}|{{ {'a':1, 'b': [1,2]}|tojson(indent=2) }}|{{ '"\n\u0001<>&\'' | tojson }}|{{ [] | tojson(indent=2) }}|{{ {'b':1,'a':2}|tojson(sort_keys=true) }}|{{ {'a':1}|tojson(separators=(',',':')) }})J",
     R"J({"a": [1, "é", null, 1.5]}|{
  "a": 1,
  "b": [
    1,
    2
  ]
}|"\"\n\u0001<>&'"|[]|{"a": 2, "b": 1}|{"a":1})J"},
    {R"J({% macro m(a, b=2) %}{{a}}{{b}}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1,3,4, c=5) }}|{{ m(b=7, a=1) }})J",
     R"J(12(){}|13(4,){'c': 5}|17(){})J"},
    {R"J({{ 'abc'[::-1] }}{{ [1,2,3][1:] }}{{ 'a b  c'.split() }}{{ 'a,b'.split(',') }}{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}{{ '日本語'[1] }}{{ '日本語'|length }}{{ [1,2,3,4,5][-2:] }}{{ [1,2,3,4,5][::2] }}{{ [1,2,3][5:] }})J",
     R"J(cba[2, 3]['a', 'b', 'c']['a', 'b']['a', 'b,c']['a,b', 'c']本3[4, 5][1, 3, 5][])J"},
    {R"J(a
  {% if true %}
  x
  {% endif %}
  b  {% if true %}y{% endif %}
{# c #}
z
    {%- if true %} q {% endif -%}
  w
  {{ 'v' }}
  {%+ if true %}k{% endif %})J",
     R"J(a
  x
  b  yz q w
  v
  k)J"},
    {R"J({{ 1 == true }}{{ undefined_x == undefined_y }}{{ 'a' ~ none }}{{ [1,2] ~ 'x' }}{{ 'a' ~ 1 ~ 2.5 }})J",
     R"J(TrueTrueaNone[1, 2]xa12.5)J"},
    {R"J({{ (1,2) }}{{ (1,) }}{{ () }}{{ 3.0|int }}{{ '3.7'|int }}{{ 'x'|int }}{{ 2.5|round }}{{ 3.14159|round(2) }}{{ -3|abs }}{{ 3|round }}{{ 2.675|round(2) }}{{ 7.5|round(method='floor') }}{{ '0x1A'|int(base=16) }}{{ ' 12 '|int }})J",
     R"J((1, 2)(1,)()3302.03.14332.677.02612)J"},
    {R"J({{ 'hello world'|title }}{{ 'hELLO wOrld-foo'|capitalize }}{{ '  a '|trim }}{{ [3,1,2]|sort }}{{ [3,1,2]|sort(reverse=true) }}{{ ['b','A','a']|sort }}{{ 'xxhixx'|trim('x') }}{{ "they're bill's"|title }}{{ "they're bill's".title() }})J",
     R"J(Hello WorldHello world-fooa[1, 2, 3][3, 2, 1]['A', 'a', 'b']hiThey're Bill'sThey'Re Bill'S)J"},
    {R"J({{ {'b':1,'a':2}|dictsort }}{{ {'b':1,'a':2}|items|list }}{{ [1,2,2,3]|unique|list }}{{ [1,2]|reverse|list }}{{ ['A','a','b']|unique|list }}{{ {'b':1,'a':2}|dictsort(by='value', reverse=true) }})J",
     R"J([('a', 2), ('b', 1)][('b', 1), ('a', 2)][1, 2, 3][2, 1]['A', 'b'][('a', 2), ('b', 1)])J"},
    {R"J({% for i in range(5) %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.cycle('a','b') }}|{% endfor %})J",
     R"J(1054TrueFalse5a|2143FalseFalse5b|3232FalseFalse5a|4321FalseFalse5b|5410FalseTrue5a|)J"},
    {R"J({% for i in range(10) if i is odd %}{{ i }}{{ loop.index }}{{ loop.last }},{% else %}none{% endfor %}{% for i in [] %}x{% else %}empty{% endfor %})J",
     R"J(11False,32False,53False,74False,95True,empty)J"},
    {R"J({% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %})J",
     R"J(0134)J"},
    {R"J({% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'a': 1, 'b': 2} %}{{ k }}{% endfor %}{% for a, b in [[1,2],[3,4]] %}{{ a+b }}{% endfor %})J",
     R"J(a=1;b=2;ab37)J"},
    {R"J({% set ns = namespace(a=1, items=[]) %}{% for i in range(3) %}{% set ns.a = ns.a * 2 %}{% endfor %}{{ ns.a }}{{ ns.items }})J",
     R"J(8[])J"},
    {R"J({% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = 5 %}{{ x }}{% endfor %}{{x}}{% if true %}{% set y = 3 %}{% endif %}{{ y }})J",
     R"J(151513)J"},
    {R"J({% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}{% set s %}  block {{ a }}  {% endset %}[{{ s }}]{% set u | upper | trim %} hi {% endset %}[{{ u }}])J",
     R"J(12(1, 2)[  block 1  ][HI])J"},
    {R"J({% filter upper %}hello {{ 'x' }}{% endfilter %}{% filter replace('a', 'b') | upper %}banana{% endfilter %})J",
     R"J(HELLO XBBNBNB)J"},
    {R"J({% macro outer(x) %}[{{ caller(x * 2) }}]{% endmacro %}{% call(v) outer(3) %}v={{ v }}{% endcall %}{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(5) }})J",
     R"J([v=6]54321)J"},
    {R"J({{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ 1 is number }}{{ 1.5 is float }}{{ 1 is integer }}{{ true is boolean }}{{ false is false }}{{ true is true }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 'a' is equalto 'a' }}{{ 1 is eq 1 }}{{ [] is sequence }}{{ 'a' is in 'abc' }}{{ none is not none }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 1 is sameas 1 }})J",
     R"J(FalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueFalseTrueTrueTrue)J"},
    {R"J({{ 'a' if true else 'b' }}{{ 'a' if false else 'b' }}[{{ 'a' if false }}]{{ 1 if none is none and 2 > 1 or false else 0 }})J",
     R"J(ab[]1)J"},
    {R"J({{ not true }}{{ not 1 == 2 }}{{ 1 < 2 < 3 }}{{ 3 > 2 > 5 }}{{ 'b' in 'abc' }}{{ 'd' not in 'abc' }}{{ 1 in [1,2] }}{{ 'k' in {'k': 1} }}{{ 1 != 2 }})J",
     R"J(FalseTrueTrueFalseTrueTrueTrueTrueTrue)J"},
    {R"J({{ -2 ** 2 }}{{ 2 * 3 + 1 }}{{ 1 + 2 * 3 }}{{ (1 + 2) * 3 }}{{ 10 - 2 - 3 }}{{ 2 ** 3 ** 2 }}{{ 'ab' * 3 }}{{ [1] * 3 }}{{ 7 % 3 }}{{ -7 // 2 }}{{ 7.5 // 2 }}{{ 1 + 1.5 }}{{ 'a' + 'b' ~ 'c' }}{{ 1 ~ (2 + 3) }}{{ 4 / 2 }})J",
     R"J(4779564ababab[1, 1, 1]1-43.02.5abc152.0)J"},
    {R"J({% set d = {} %}{{ d.y }}|{{ d.y is defined }}|{{ d['y'] is defined }})J",
     R"J(|False|False)J"},
    {R"J({{ [1,2,3]|join(', ') }}{{ [{'n':'a'},{'n':'b'}]|map(attribute='n')|join }}{{ ['a','b']|map('upper')|list }}{{ [{'n':1},{'n':2}]|selectattr('n', 'equalto', 2)|list }}{{ [{'n':1},{'x':2}]|selectattr('n', 'defined')|list }}{{ [1,2,3,4]|select('odd')|list }}{{ [1,2,3,4]|reject('odd')|list }}{{ [{'n':1},{'n':2}]|rejectattr('n', 'eq', 2)|list }}{{ [1, 0, 2]|select|list }})J",
     R"J(1, 2, 3ab['A', 'B'][{'n': 2}][{'n': 1}][1, 3][2, 4][{'n': 1}][1, 2])J"},
    {R"J({{ 'hello'|replace('l', 'L') }}{{ 'hello'|replace('l', 'L', 1) }}{{ 'hello'.replace('l', '') }}{{ 'ab'.replace('', '-') }}{{ 'Hello'|upper }}{{ 'Hello'|lower }}{{ [1,2]|first }}{{ [1,2]|last }}{{ 'abc'|first }}{{ []|first }}{{ 'x'|default('d') }}{{ y|default('d') }}{{ ''|default('d', true) }}{{ none|d('n') }}{{ [3,1]|min }}{{ [3,1]|max }}{{ [1,2,3]|sum }})J",
     R"J(heLLoheLloheo-a-b-HELLOhello12axddNone136)J"},
    {R"J({{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb\n\nc'|indent(2, true) }}|{{ 'a\nb\n\nc'|indent(2, blank=true) }}|{{ 'a\nb'|indent('>>') }}|{{ 'one two  three'|wordcount }}|{{ '<a href="x">&</a>'|e }}|{{ 'abc'|center(9) }}|{{ 'hello world foo'|truncate(9) }})J",
     R"J(a
  b

  c|  a
  b

  c|a
  b
  
  c|a
>>b|3|&lt;a href=&#34;x&#34;&gt;&amp;&lt;/a&gt;|   abc   |hello...)J"},
    {R"J({{ '%s-%d'|format('a', 3) }}{{ 'a{}b{}'.format(1, 'x') }}{{ '{0}{1}{0}'.format('a', 'b') }}{{ '{name}!'.format(name='x') }}{{ '{:>5}|{:<4}|{:^5}|{:.2f}|{:05d}'.format('a', 'b', 'c', 3.14159, 42) }}{{ '%5.1f|%-4s|%03d|%x' % (2.25, 'a', 7, 255) }}{{ '%(a)s' % {'a': 1} }})J",
     R"J(a-3a1bxabax!    a|b   |  c  |3.14|00042  2.2|a   |007|ff1)J"},
    {R"J({{ '  x  '.strip() }}{{ 'xxayy'.strip('xy') }}{{ '  x'.lstrip() }}{{ 'x  '.rstrip() }}{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'abc'.upper() }}{{ 'a-b'.split('-') }}{{ 'abc'.find('c') }}{{ 'aXa'.count('a') }}{{ 'abc'.startswith('b', 1) }}{{ ','.join(['a','b']) }}{{ 'a b'.title() }}{{ 'ab'.capitalize() }})J",
     R"J(xaxxTrueTrueABC['a', 'b']22Truea,bA BAb)J"},
    {R"J({% set d = {'a': 1, 'b': 2} %}{{ d.keys()|list }}{{ d.values()|list }}{{ d.items()|list }}{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 9) }}{{ d['a'] }}{{ d.a }}{{ d|length }}{{ d|list }}{{ d }})J",
     R"J(['a', 'b'][1, 2][('a', 1), ('b', 2)]1None9112['a', 'b']{'a': 1, 'b': 2})J"},
    {R"J({{ strftime_now('%Y-%m-%d %H:%M %B %d, %Y %A %j') }})J",
     R"J(2026-01-15 09:30 January 15, 2026 Thursday 015)J"},
    {R"J({{ range(3)|list }}{{ range(1, 10, 3)|list }}{{ range(5, 0, -2)|list }}{{ dict(a=1, b=2) }}{{ namespace(x=1).x }})J",
     R"J([0, 1, 2][1, 4, 7][5, 3, 1]{'a': 1, 'b': 2}1)J"},
    {R"J({% set j = joiner(', ') %}{% for i in range(3) %}{{ j() }}{{ i }}{% endfor %})J",
     R"J(0, 1, 2)J"},
    {R"J({{ "a" "b" }}{{ 'it''s' }}{{ "\t|\x41|\u00e9|\\n|\q" }}{{ 1_000 }}{{ 1.5e3 }}{{ 0.5 }})J",
     R"J(abits	|A|é|\n|\q10001500.00.5)J"},
    {R"J({{ [1,2,3][0] }}{{ [1,2,3].0 }}{{ [1,2,3][-1] }}{{ [1,2,3][10] }}{{ 'abc'[1:] }}{{ {'a': {'b': [10, 20]}}.a.b[1] }}{{ messages[0].content }}{{ messages[0]['role'] }}{{ messages|length }})J",
     R"J(113bc20hiuser1)J"},
    {R"J({{ messages[0].content|tojson }}{{ messages|tojson }}{{ true|tojson }}{{ none|tojson }}{{ 1.0|tojson }}{{ 'é日'|tojson }}{{ "\u2028"|tojson }})J",
     R"J("hi"[{"role": "user", "content": "hi"}]truenull1.0"é日"" ")J"},
    {R"J({% if true %}a{% elif true %}b{% else %}c{% endif %}{% if false %}a{% elif true %}b{% else %}c{% endif %}{% if false %}a{% elif false %}b{% else %}c{% endif %})J",
     R"J(abc)J"},
    {R"J({%- for m in messages -%}
    {{- m.role -}}
{%- endfor -%}
  {{ bos_token }})J",
     R"J(user<s>)J"},
    {R"J({{ [1, 2] == [1, 2] }}{{ (1, 2) == [1, 2] }}{{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }}{{ 1 == 1.0 }}{{ 'a' < 'b' }}{{ [1, 2] < [1, 3] }})J",
     R"J(TrueFalseTrueTrueTrueTrue)J"},
    {R"J({{ none.x }}|{{ (1).x }}|{{ none['a'] }})J",
     R"J(||)J"},
    {R"J({% raw %}{{ not parsed }}{% endraw %}|{%- raw -%}  x  {%- endraw -%}  |)J",
     R"J({{ not parsed }}|x|)J"},
    {R"J({{ [3, 1, 2]|sort|first }}{{ [{'a': 2}, {'a': 1}]|sort(attribute='a')|map(attribute='a')|list }}{{ ['b', 'a']|sort|join }}{{ 'abc'|list }}{{ 'abc'|reverse }})J",
     R"J(1[1, 2]ab['a', 'b', 'c']cba)J"},
    {R"J({{ 'abc' ~ x }}{{ x ~ 'abc' }}{% if x %}1{% endif %}{% for a in x %}2{% endfor %}{{ x|string }}{{ x|upper }}{{ x|list }}{{ x|trim }})J",
     R"J(abcabc[])J"},
    {R"J({{ 'a' ~ [1,'b'] }}{{ {'x': none} }}{{ [true, false] }}{{ 1.5e16 }}{{ 0.1 + 0.2 }}{{ 1/3 }}{{ 100.0 }}{{ 1e100 }}{{ -0.0 }}{{ 12345678901234567.0 }})J",
     R"J(a[1, 'b']{'x': None}[True, False]1.5e+160.300000000000000040.3333333333333333100.01e+100-0.01.2345678901234568e+16)J"},
    {R"J({% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}inner{% endcall %})J",
     R"J(inner)J"},
    {R"J({% set x = [1,2,3] %}{{ x|length }}{{ x|count }}{{ 'héllo'|length }}{{ {'a':1}|length }})J",
     R"J(3351)J"},
    {R"J({{ "Use '"|safe + "it's" }}|{{ "<b>"|e + "<i>" }}|{{ "x" + "<y>"|safe }})J",
     R"J(Use 'it&#39;s|&lt;b&gt;&lt;i&gt;|x<y>)J"},
    {R"J({%- set x = 'a' -%}
{%- if x == 'a' %}
  A
{%- endif %}
  {% for i in [1,2] %}
    {{ i }}
  {% endfor %}
end)J",
     R"J(  A    1
    2
end)J"},
    {R"J({# comment -#}   x {#- another #}   y
  {#- trailing #}
z)J",
     R"J(x   yz)J"},
    {R"J({{ 'a' }}
{{ 'b' }}
{% if true %}
c
{% endif %})J",
     R"J(a
b
c
)J"},
    {R"J({{ [1,2,3]|batch(2)|list }}{{ 'x'|pprint }}{{ [1,2]|map('string')|join('-') }}{{ [1.5, 2]|map('int')|list }})J",
     R"J([[1, 2], [3]]'x'1-2[1, 2])J"},
    {R"J({% set ns = namespace(found=false) %}{% for m in messages %}{% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }})J",
     R"J(True)J"},
    {R"J({%- macro render(x, indent=0) -%}
{%- if x is mapping -%}
{%- for k, v in x.items() -%}
{{ ' ' * indent }}{{ k }}:
{{ render(v, indent + 2) }}
{%- endfor -%}
{%- else -%}
{{ ' ' * indent }}{{ x }}
{% endif -%}
{%- endmacro -%}
{{ render({'a': {'b': 1, 'c': [1, 2]}}) }})J",
     R"J(a:
  b:
    1
  c:
    [1, 2]
)J"},
    {R"J({{ messages[-1]['content'] | trim }}{% for message in messages[::-1] %}{{ message.role }}{% endfor %}{{ messages | selectattr('role', 'equalto', 'user') | list | length }})J",
     R"J(hiuser1)J"},
    {R"J({% for m in messages %}{{ loop.previtem is defined }}{{ loop.nextitem is defined }}{% endfor %})J",
     R"J(FalseFalse)J"},
    {R"J({% set content = 'a<think>b</think>c' %}{{ content.split('</think>')[-1].lstrip('\n') }}{{ content.split('<think>')[-1].split('</think>')[0].rstrip('\n') }})J",
     R"J(cb)J"},
    {R"J({{ 'x' is string and 'y' is not mapping }}{{ [1] is not string }}{{ {'type': 'a'}.type }}{{ {'items': 3}['items'] }})J",
     R"J(TrueTruea3)J"},
    {R"J({{ [1,2,3] | tojson(indent=4) }}{{ {'a': {'b': []}} | tojson(indent=2) }}{{ {'k': 'v'} | tojson(indent='\t') }})J",
     R"J([
    1,
    2,
    3
]{
  "a": {
    "b": []
  }
}{
	"k": "v"
})J"},
    {R"J({{ 10 | string + 'a' }}{{ 3 | float }}{{ '2.5' | float }}{{ 'x' | float }}{{ 1 | string | length }})J",
     R"J(10a3.02.50.01)J"},
    {R"J({%- if true -%}
    a
{%- else -%}
    b
{%- endif %}

c
)J",
     R"J(a
c)J"},

};

Value default_vars() {
    Value vars = Value::new_dict();
    Value msg = Value::new_dict();
    msg.dict->set("role", Value::string("user"));
    msg.dict->set("content", Value::string("hi"));
    vars.dict->set("messages", Value::new_list({msg}));
    vars.dict->set("add_generation_prompt", Value::boolean(true));
    vars.dict->set("bos_token", Value::string("<s>"));
    vars.dict->set("eos_token", Value::string("</s>"));
    return vars;
}

Clock test_clock() {
    std::tm t{};
    t.tm_year = 2026 - 1900;
    t.tm_mon = 0;
    t.tm_mday = 15;
    t.tm_hour = 9;
    t.tm_min = 30;
    return text::fixed_clock(t);
}

Result<std::string> render(std::string_view src, const TemplateOptions& opts = {}) {
    auto t = Template::parse(src, opts);
    if (!t) return t.error();
    return t->render(default_vars(), test_clock());
}

TEST(JinjaGolden, MatchesJinja2) {
    for (const Golden& g : kGolden) {
        auto out = render(g.tmpl);
        ASSERT_TRUE(out.ok()) << g.tmpl << "\n" << out.error().message;
        EXPECT_EQ(*out, g.expected) << "template: " << g.tmpl;
    }
}

std::string error_of(std::string_view src, const TemplateOptions& opts = {}) {
    auto out = render(src, opts);
    EXPECT_FALSE(out.ok()) << src << " rendered as: " << (out.ok() ? *out : "");
    return out.ok() ? "" : out.error().message;
}

TEST(JinjaErrors, SyntaxErrorsNameLineAndColumn) {
    EXPECT_EQ(error_of("line one\n  {% if x %}\n  {{ x + }}\n{% endif %}"),
              "line 3, column 10: syntax error: expected an expression, found '}}'");
    EXPECT_EQ(error_of("{% for x in y %}no end"),
              "line 1, column 23: syntax error: unexpected end of template, expected 'endfor' or 'else'");
    EXPECT_EQ(error_of("ab\n{{ 'unterminated }}"), "line 2, column 4: unterminated string literal");
    EXPECT_EQ(error_of("{# never closed"), "line 1, column 1: unterminated comment (missing '#}')");
    EXPECT_EQ(error_of("{% frobnicate %}"), "line 1, column 4: syntax error: unknown or unsupported tag 'frobnicate'");
    EXPECT_EQ(error_of("{% break %}"), "line 1, column 4: syntax error: 'break' outside of a loop");
    // Columns count characters, not bytes.
    EXPECT_EQ(error_of("日本 {{ 1 + }}"), "line 1, column 11: syntax error: expected an expression, found '}}'");
}

TEST(JinjaErrors, RuntimeErrorsNameLineAndColumn) {
    EXPECT_EQ(error_of("a\nb {{ raise_exception('Conversation roles must alternate') }}"),
              "line 2, column 21: Conversation roles must alternate");
    EXPECT_EQ(error_of("{{ 1 }}\n{{ 'a' + 1 }}"), "line 2, column 8: unsupported operand type(s) for +: 'str' and 'int'");
    EXPECT_EQ(error_of("{{ messages | nosuchfilter }}"), "line 1, column 15: no filter named 'nosuchfilter'");
    EXPECT_EQ(error_of("{% macro m() %}\n  {{ 1 // 0 }}\n{% endmacro %}{{ m() }}"), "line 2, column 8: division by zero");
}

TEST(JinjaUndefined, BehavesAsJinja2) {
    // Printing, truthiness, iteration, length and defaults of an undefined name.
    EXPECT_EQ(*render("[{{ nope }}]{% if nope %}T{% else %}F{% endif %}{% for x in nope %}x{% endfor %}"
                      "{{ nope | length }}{{ nope | default('d') }}{{ nope is defined }}{{ nope ~ 'a' }}"),
              "[]F0dFalsea");
    // A missing key of a dict is undefined; so is a missing index.
    EXPECT_EQ(*render("{% set d = {'a': 1} %}[{{ d.b }}{{ d['b'] }}{{ [1][5] }}]{{ d.b is defined }}"), "[]False");
    // As in Jinja2, using an undefined value further (attribute, call, arithmetic) is an error naming it.
    EXPECT_EQ(error_of("{{ nope.attr }}"), "line 1, column 8: 'nope' is undefined");
    EXPECT_EQ(error_of("{% set d = {} %}{{ d.a.b }}"), "line 1, column 23: 'dict object' has no attribute 'a'");
    EXPECT_EQ(error_of("{{ nope() }}"), "line 1, column 8: 'nope' is undefined");
    EXPECT_EQ(error_of("{{ nope + 1 }}"), "line 1, column 9: 'nope' is undefined");
    EXPECT_EQ(error_of("{{ nope | tojson }}"), "line 1, column 11: Object of type Undefined is not JSON serializable");
}

TEST(JinjaLimits, LoopIterations) {
    TemplateOptions o;
    o.limits.max_loop_iterations = 10'000;
    std::string e = error_of("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", o);
    EXPECT_NE(e.find("loop iterations (and list items made) exceed the limit of 10000"), std::string::npos) << e;
    // The default limit stops a loop of a million squared quickly.
    e = error_of("{% for i in range(1000000) %}{% for j in range(1000000) %}{% endfor %}{% endfor %}");
    EXPECT_NE(e.find("loop iterations (and list items made) exceed the limit of 1000000"), std::string::npos) << e;
    e = error_of("{{ range(100000000) | length }}");
    EXPECT_NE(e.find("exceeds the limit of"), std::string::npos) << e;
}

TEST(JinjaLimits, RecursionDepth) {
    std::string e = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
    EXPECT_NE(e.find("macro calls nested deeper than the limit of 100"), std::string::npos) << e;
    // Mutual recursion through a caller block is bounded the same way.
    e = error_of("{% macro a() %}{% call a() %}x{% endcall %}{% endmacro %}{{ a() }}");
    EXPECT_NE(e.find("nested deeper than the limit"), std::string::npos) << e;
    // Deeply nested syntax is rejected by the parser, not by the stack.
    e = error_of(std::string("{{ ") + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}");
    EXPECT_NE(e.find("nested deeper than 200 levels"), std::string::npos) << e;
    e = error_of(std::string(5000, '-') + std::string("{{ ") + std::string(5000, '-') + "1 }}");
    EXPECT_NE(e.find("nested deeper than 200 levels"), std::string::npos) << e;
    std::string nested;
    for (int k = 0; k < 1000; ++k) nested += "{% if true %}";
    e = error_of(nested);
    EXPECT_NE(e.find("nested deeper than 200 levels"), std::string::npos) << e;
}

TEST(JinjaLimits, OutputAndValueSize) {
    TemplateOptions o;
    o.limits.max_output_bytes = 1000;
    std::string e = error_of("{% for i in range(100) %}0123456789abcdef{% endfor %}", o);
    EXPECT_NE(e.find("output exceeds the limit of 1000 bytes"), std::string::npos) << e;
    e = error_of("{{ 'x' * 100000000000 }}");
    EXPECT_NE(e.find("exceeds the output limit"), std::string::npos) << e;
    // Doubling a string or a list in a loop hits a size limit long before memory runs out.
    e = error_of("{% set ns = namespace(s='xx') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}");
    EXPECT_NE(e.find("exceeds the output limit"), std::string::npos) << e;
    e = error_of("{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}");
    EXPECT_NE(e.find("(and list items made) exceed the limit"), std::string::npos) << e;
    TemplateOptions budget;
    budget.limits.max_total_bytes = 1'000'000;
    e = error_of("{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% do ns.l.append('x' * 100000) %}{% endfor %}",
                 budget);
    EXPECT_NE(e.find("strings built exceed the limit of 1000000 bytes in total"), std::string::npos) << e;
    // A list or namespace cannot be made to contain itself (shared pointers
    // would leak the cycle), directly or through a function that holds it.
    e = error_of("{% set l = [1] %}{% do l.append(l) %}{{ l }}");
    EXPECT_NE(e.find("cannot contain itself"), std::string::npos) << e;
    e = error_of("{% set ns = namespace(l=[]) %}{% do ns.l.append(ns) %}");
    EXPECT_NE(e.find("cannot contain itself"), std::string::npos) << e;
    e = error_of("{% set ns = namespace() %}{% set ns.me = ns %}");
    EXPECT_NE(e.find("cannot contain itself"), std::string::npos) << e;
    e = error_of("{% set l = [] %}{% do l.append(l.append) %}");
    EXPECT_NE(e.find("functions cannot be stored"), std::string::npos) << e;
}

TEST(JinjaWhitespace, OptionsCanBeTurnedOff) {
    TemplateOptions o;
    o.trim_blocks = false;
    o.lstrip_blocks = false;
    o.keep_trailing_newline = true;
    EXPECT_EQ(*render("a\n  {% if true %}\nb\n  {% endif %}\n", o), "a\n  \nb\n  \n");
    EXPECT_EQ(*render("a\n  {% if true %}\nb\n  {% endif %}\n"), "a\nb\n");
}

TEST(JinjaValues, PythonFloatRepr) {
    EXPECT_EQ(float_repr(1.0), "1.0");
    EXPECT_EQ(float_repr(0.1), "0.1");
    EXPECT_EQ(float_repr(1e16), "1e+16");
    EXPECT_EQ(float_repr(1e15), "1000000000000000.0");
    EXPECT_EQ(float_repr(0.0001), "0.0001");
    EXPECT_EQ(float_repr(0.00001), "1e-05");
    EXPECT_EQ(float_repr(-2.5e-7), "-2.5e-07");
    EXPECT_EQ(float_repr(123456.789), "123456.789");
}

TEST(JinjaValues, InvalidUtf8IsReplaced) {
    EXPECT_EQ(utf8_sanitize("a\xff" "b\xc3"), "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    EXPECT_EQ(utf8_sanitize("ok \xc3\xa9 \xef\xbf\xbd"), "ok \xc3\xa9 \xef\xbf\xbd");
    EXPECT_EQ(utf8_length("a\xff\xfe"), 3u);
}

TEST(JinjaTemplate, RendersConcurrentlyFromOneParse) {
    auto t = Template::parse("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}");
    ASSERT_TRUE(t.ok());
    std::vector<std::thread> threads;
    std::atomic<int> good{0};
    for (int k = 0; k < 8; ++k)
        threads.emplace_back([&] {
            for (int r = 0; r < 200; ++r)
                if (auto out = t->render(default_vars()); out.ok() && *out == "user:hi;") ++good;
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(good.load(), 8 * 200);
}

}  // namespace
}  // namespace strata::jinja
