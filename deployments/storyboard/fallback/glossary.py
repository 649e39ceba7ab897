"""A small Chinese↔English word list, so visual prompts stay English for Chinese requests.

Covers the subjects short videos are usually about; a word outside it simply does not reach the
English visual prompt (the genre's own English subject stands in).
"""

from __future__ import annotations

_PAIRS = """
森林 forest|探险 adventure|冒险 adventure|山 mountain|山脉 mountains|高山 mountains
雪山 snow mountain|大海 ocean|海 sea|海边 seaside|海洋 ocean|沙滩 beach|海滩 beach|日落 sunset
日出 sunrise|星空 starry sky|河流 river|湖 lake|湖泊 lake|瀑布 waterfall|草原 grassland
沙漠 desert|峡谷 canyon|雨林 rainforest|花 flowers|花海 flower field|樱花 blossoms
樱花 cherry blossoms|京都 Kyoto
春天 spring|夏天 summer|秋天 autumn|冬天 winter|雪 snow|雨 rain|云海 sea of clouds|自然 nature
徒步 hiking|露营 camping|野生动物 wildlife|动物 animals|城市 city|夜景 night view|街道 street
街头 street|古镇 ancient town|旅行 travel|旅游 travel|旅程 journey|外滩 the Bund|上海 Shanghai
北京 Beijing|成都 Chengdu|重庆 Chongqing|西安 Xi'an|杭州 Hangzhou|西湖 West Lake|长城 Great Wall
故宫 Forbidden City|东京 Tokyo|巴黎 Paris|纽约 New York|伦敦 London|建筑 architecture
地铁 subway|咖啡馆 cafe|夜市 night market|胡同 hutong|寺庙 temple|博物馆 museum|美食 food
火锅 hotpot|面条 noodles|拉面 ramen|小吃 street food|烹饪 cooking|做饭 cooking|厨房 kitchen
厨师 chef|咖啡 coffee|茶 tea|蛋糕 cake|甜品 dessert|面包 bread|烧烤 barbecue|饺子 dumplings
早餐 breakfast|水果 fruit|餐厅 restaurant|菜 dish|食谱 recipe|红烧肉 braised pork|寿司 sushi
产品 product|手机 smartphone|智能 smart|手表 watch|耳机 headphones|电脑 laptop|笔记本 laptop
汽车 car|电动车 electric car|相机 camera|香水 perfume|口红 lipstick|护肤品 skincare
运动鞋 sneakers|品牌 brand|新款 new|科技 technology|发布会 launch event|设计 design
功能 features|家居 home|光合作用 photosynthesis|原理 principle|科学 science|知识 knowledge
历史 history|宇宙 universe|太空 space|星球 planet|地球 earth|黑洞 black hole|细胞 cell
人工智能 artificial intelligence|编程 programming|数学 math|物理 physics|化学 chemistry
环保 environment|气候 climate|能源 energy|教程 tutorial|学习 learning|机器人 robot|火箭 rocket
恐龙 dinosaur|古代 ancient|文化 culture|少年 teenager|少女 girl|女孩 girl|男孩 boy|老人 old man
家人 family|家庭 family|朋友 friends|爱情 love|友情 friendship|梦想 dream|成长 growing up
回忆 memories|毕业 graduation|青春 youth|奋斗 struggle|励志 inspiration|故事 story|重逢 reunion
离别 farewell|母亲 mother|父亲 father|篮球 basketball|足球 football|跑步 running|马拉松 marathon
健身 fitness|游泳 swimming|滑雪 skiing|冲浪 surfing|骑行 cycling|网球 tennis|比赛 competition
冠军 champion|运动 sports|运动员 athlete|瑜伽 yoga|攀岩 rock climbing|拳击 boxing
冲线 finish line|热血 passion|训练 training|猫 cat|猫咪 cat|狗 dog|小狗 puppy|宠物 pet
熊猫 panda|大熊猫 giant panda|鸟 bird|鲸鱼 whale|老虎 tiger|狮子 lion|鹿 deer|蝴蝶 butterfly
马 horse|兔子 rabbit|婚礼 wedding|节日 festival|春节 Spring Festival|中秋 Mid-Autumn Festival
烟花 fireworks|音乐 music|舞蹈 dance|艺术 art|画画 painting|摄影 photography|时尚 fashion
书 book|图书馆 library|校园 campus|学校 school|工作 work|办公室 office|一天 a day|生活 life
日常 daily life|夜晚 night|清晨 morning
"""


def _parse(pairs: str) -> list[tuple[str, str]]:
    return [
        tuple(entry.split(" ", 1))  # type: ignore[misc]
        for line in pairs.strip().splitlines()
        for entry in line.split("|")
    ]


ZH_TO_EN: dict[str, str] = dict(_parse(_PAIRS))
EN_TO_ZH: dict[str, str] = {}
for _zh, _en in _parse(_PAIRS):
    EN_TO_ZH.setdefault(_en.lower(), _zh)
