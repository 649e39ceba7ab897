"""The fallback's template library: genres, each a scene arc of beats, and visual styles.

A beat is one shot of the arc (opening, development, climax, ending) written in both languages.
Placeholders: `{topic}` and `{detail}` in the script's language, `{subject}` in English.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployments.storyboard.constants import Camera

C = Camera


@dataclass(frozen=True)
class Beat:
    camera: Camera
    zh: tuple[str, str, str]  # description, action, narration
    en: tuple[str, str, str]
    visual: str


@dataclass(frozen=True)
class Genre:
    name: str
    cues: tuple[str, ...]  # Chinese substrings and English word stems that select the genre
    subject_en: str  # stands in for a topic that has no English words
    topic_zh: str  # stands in for a topic that has no Chinese words
    titles: tuple[str, str]  # zh, en
    default_style: str
    opening: Beat
    development: tuple[Beat, ...]
    climax: Beat
    ending: Beat


@dataclass(frozen=True)
class Style:
    visual: str  # English modifiers appended to every visual prompt
    cameras: tuple[Camera, ...]  # the rotation that breaks up repeated shots
    aliases: tuple[str, ...]


STYLES: dict[str, Style] = {
    "cinematic": Style(
        "cinematic lighting, anamorphic lens, shallow depth of field, film grain",
        (C.WIDE_SHOT, C.TRACKING_SHOT, C.CLOSE_UP, C.LOW_ANGLE, C.AERIAL_VIEW),
        ("cinematic", "film", "movie", "电影", "电影感", "大片"),
    ),
    "documentary": Style(
        "natural light, documentary photography, realistic, handheld feel",
        (C.WIDE_SHOT, C.MEDIUM_SHOT, C.CLOSE_UP, C.PANNING_SHOT, C.TIME_LAPSE),
        ("documentary", "纪录片", "纪实", "记录片"),
    ),
    "vlog": Style(
        "vlog style, handheld camera, bright natural colors, candid moments",
        (C.POINT_OF_VIEW, C.MEDIUM_SHOT, C.TRACKING_SHOT, C.CLOSE_UP, C.WIDE_SHOT),
        ("vlog", "日常记录", "日记"),
    ),
    "anime": Style(
        "anime style, hand-drawn animation, vibrant colors, cel shading",
        (C.WIDE_SHOT, C.CLOSE_UP, C.LOW_ANGLE, C.MEDIUM_SHOT, C.PANNING_SHOT),
        ("anime", "animation", "cartoon", "动漫", "动画", "二次元", "卡通"),
    ),
    "commercial": Style(
        "commercial advertising, studio lighting, clean background, high-end product photography",
        (C.CLOSE_UP, C.EXTREME_CLOSE_UP, C.TRACKING_SHOT, C.MEDIUM_SHOT, C.LOW_ANGLE),
        ("commercial", "advert", "ad", "promo", "广告", "商业", "宣传"),
    ),
    "minimalist": Style(
        "minimalist composition, soft pastel palette, negative space, clean lines",
        (C.MEDIUM_SHOT, C.HIGH_ANGLE, C.CLOSE_UP, C.WIDE_SHOT),
        ("minimalist", "minimal", "simple", "简约", "极简", "清新"),
    ),
    "retro": Style(
        "retro 1980s film look, warm faded colors, vintage grain, light leaks",
        (C.MEDIUM_SHOT, C.PANNING_SHOT, C.CLOSE_UP, C.WIDE_SHOT),
        ("retro", "vintage", "nostalgic", "复古", "怀旧", "港风"),
    ),
    "cyberpunk": Style(
        "cyberpunk aesthetic, neon lights, rain-soaked streets, teal and magenta palette",
        (C.LOW_ANGLE, C.TRACKING_SHOT, C.AERIAL_VIEW, C.CLOSE_UP),
        ("cyberpunk", "neon", "sci-fi", "scifi", "赛博朋克", "科幻", "未来感"),
    ),
    "epic": Style(
        "epic scale, dramatic lighting, volumetric light rays, ultra detailed",
        (C.AERIAL_VIEW, C.LOW_ANGLE, C.WIDE_SHOT, C.TRACKING_SHOT, C.CLOSE_UP),
        ("epic", "dramatic", "史诗", "震撼", "热血"),
    ),
}


def _beat(camera: Camera, zh: str, en: str, visual: str) -> Beat:
    """A beat from 'description | action | narration' strings, one per language."""
    zh_parts = tuple(part.strip() for part in zh.split("|"))
    en_parts = tuple(part.strip() for part in en.split("|"))
    assert len(zh_parts) == len(en_parts) == 3, (zh, en)
    return Beat(camera, zh_parts, en_parts, visual)  # type: ignore[arg-type]


NATURE = Genre(
    name="nature",
    cues=(
        "森林",
        "山",
        "海",
        "湖",
        "河",
        "瀑布",
        "草原",
        "沙漠",
        "峡谷",
        "雨林",
        "探险",
        "冒险",
        "徒步",
        "露营",
        "自然",
        "日出",
        "日落",
        "星空",
        "花",
        "雪",
        "forest",
        "mountain",
        "ocean",
        "sea",
        "lake",
        "river",
        "waterfall",
        "desert",
        "canyon",
        "jungle",
        "adventur",
        "hiking",
        "hike",
        "hiker",
        "camp",
        "nature",
        "wild",
        "sunrise",
        "sunset",
        "island",
        "glacier",
        "volcano",
        "blossom",
        "flower",
        "garden",
        "cherry",
        "autumn",
        "spring",
        "winter",
        "snow",
        "kayak",
    ),
    subject_en="untouched wilderness",
    topic_zh="自然探险",
    titles=("{topic}之旅", "{topic}: Into the Wild"),
    default_style="cinematic",
    opening=_beat(
        C.AERIAL_VIEW,
        "晨雾笼罩的{topic}全景，第一缕阳光穿过云层 | 镜头从高空缓缓下降 | "
        "每一段旅程，都从一个清晨开始。",
        "A misty panorama of the {topic} as the first light breaks through the clouds "
        "| The camera glides down from high above | Every journey begins with a single morning.",
        "aerial view of {subject} at dawn, morning mist, first sunlight through clouds",
    ),
    development=(
        _beat(
            C.TRACKING_SHOT,
            "探险者背着行囊踏上小径，脚下落叶沙沙作响 | 探险者迈步前行，回头望了一眼来路 | "
            "背上行囊，把喧嚣留在身后。",
            "An explorer with a backpack sets off along a narrow trail, leaves crunching underfoot "
            "| The explorer strides ahead and glances back | "
            "Pack light, and leave the noise behind.",
            "explorer with backpack walking a narrow trail through {subject}, following camera",
        ),
        _beat(
            C.CLOSE_UP,
            "特写{detail}：露珠、纹理与细小的生命 | 一滴露水从叶尖滑落 | "
            "走近一点，才发现{detail}藏着这么多细节。",
            "Close on {detail}: dew, texture and tiny signs of life "
            "| A drop of dew slides off a leaf | Look closer, and {detail} is full of detail.",
            "macro close up of dew on leaves in {subject}, fine textures, morning light",
        ),
        _beat(
            C.MEDIUM_SHOT,
            "溪流横在路前，探险者踩着石头小心渡过 | 探险者张开双臂保持平衡，一步步跨过溪水 | "
            "路并不总是平坦，但每一步都算数。",
            "A stream cuts across the path and the explorer hops from stone to stone "
            "| Arms out for balance, one careful step at a time "
            "| The path is never smooth, but every step counts.",
            "hiker crossing a clear stream on stepping stones in {subject}",
        ),
        _beat(
            C.LOW_ANGLE,
            "仰望参天巨木与陡峭岩壁，光线从缝隙间洒落 | 探险者停下脚步，抬头仰望 | "
            "在{topic}面前，我们都很渺小。",
            "Towering trees and sheer rock walls from below, light spilling through the gaps "
            "| The explorer stops and looks up | Standing before the {topic}, we are all small.",
            "low angle view of towering trees and cliffs in {subject}, light rays",
        ),
        _beat(
            C.TIME_LAPSE,
            "云影掠过山谷，天色由明转暗 | 光影在大地上快速流动 | 时间在这里，换了一种速度。",
            "Cloud shadows race across the valley as the light shifts "
            "| Light and shade sweep over the land | Out here, time moves at a different pace.",
            "time lapse of cloud shadows moving over {subject}, changing light",
        ),
    ),
    climax=_beat(
        C.WIDE_SHOT,
        "探险者登上最高处，眼前豁然开朗，壮阔景色铺展到天边 | 探险者张开双臂，迎着风大口呼吸 | "
        "当你终于抵达，所有的疲惫都有了答案。",
        "The explorer reaches the summit and the whole landscape opens up to the horizon "
        "| Arms spread wide, breathing in the wind | "
        "When you finally arrive, every tired step makes sense.",
        "explorer standing on a summit overlooking vast {subject}, epic vista, golden hour",
    ),
    ending=_beat(
        C.WIDE_SHOT,
        "夕阳西下，探险者的剪影融入{topic}的暮色 | 探险者转身走向远方，画面渐暗 | "
        "{topic}还在那里，等着下一次出发。",
        "At sunset the explorer's silhouette melts into the dusk of the {topic} "
        "| The explorer walks off into the distance as the frame fades "
        "| The {topic} will still be here, waiting for the next departure.",
        "silhouette of explorer walking into sunset over {subject}, fade out",
    ),
)

TRAVEL = Genre(
    name="travel",
    cues=(
        "城市",
        "旅行",
        "旅游",
        "旅程",
        "街",
        "古镇",
        "夜景",
        "外滩",
        "地标",
        "打卡",
        "漫步",
        "景点",
        "上海",
        "北京",
        "成都",
        "重庆",
        "西安",
        "杭州",
        "东京",
        "巴黎",
        "纽约",
        "伦敦",
        "city",
        "travel",
        "trip",
        "tour",
        "street",
        "town",
        "skyline",
        "downtown",
        "landmark",
        "journey",
        "tokyo",
        "paris",
        "london",
        "york",
        "shanghai",
        "beijing",
    ),
    subject_en="a vibrant city",
    topic_zh="城市漫游",
    titles=("{topic}漫游记", "Wandering {topic}"),
    default_style="vlog",
    opening=_beat(
        C.AERIAL_VIEW,
        "清晨的{topic}从沉睡中醒来，天际线沐浴在晨光里 | 镜头掠过楼宇与街道 | "
        "一座城，从清晨开始讲它的故事。",
        "Morning over the {topic}: the skyline wakes up in soft light "
        "| The camera sweeps over rooftops and streets | A city starts telling its story at dawn.",
        "aerial view of {subject} skyline at sunrise, soft morning light",
    ),
    development=(
        _beat(
            C.TRACKING_SHOT,
            "旅行者拖着行李走出车站，融入熙攘的人群 | 旅行者一边走一边好奇地张望 | "
            "推开车站的门，旅程正式开始。",
            "A traveler with a suitcase steps out of the station into the bustling crowd "
            "| Walking and looking around with curiosity | "
            "Step out of the station, and the trip begins.",
            "traveler with suitcase walking out of a train station into {subject}, crowd",
        ),
        _beat(
            C.MEDIUM_SHOT,
            "老街巷里的小店与招牌，{detail}的烟火气扑面而来 | 店主招呼客人，街坊闲聊 | "
            "真正的城市，藏在这些小巷里。",
            "Small shops and signs along an old lane, the everyday life of {detail} "
            "| Shopkeepers greet customers, neighbours chat | "
            "The real city hides in its side streets.",
            "old street with small shops and hanging signs in {subject}, locals chatting",
        ),
        _beat(
            C.CLOSE_UP,
            "特写{detail}：砖墙的纹理、路牌与手中的地图 | 手指在地图上划出下一站 | "
            "每一个细节，都是这座城市的签名。",
            "Close on {detail}: brick textures, street signs and a map in hand "
            "| A finger traces the next stop on the map | Every detail is the city's signature.",
            "close up of hands holding a paper map, street signs of {subject} in background",
        ),
        _beat(
            C.POINT_OF_VIEW,
            "第一人称视角穿行于市集，街头小吃冒着热气 | 旅行者接过一份小吃，咬下一口 | "
            "用味道记住一座城。",
            "First-person walk through a market, street food steaming at every stall "
            "| The traveler takes a snack and bites into it | Remember a city by its taste.",
            "point of view walking through a busy street market in {subject}, steaming food stalls",
        ),
        _beat(
            C.TIME_LAPSE,
            "华灯初上，车流与人潮在延时中化作光的河流 | 街灯一盏盏亮起 | "
            "夜色降临，城市换上另一副面孔。",
            "As the lights come on, traffic and crowds become rivers of light in time lapse "
            "| Street lamps flicker on one by one | At nightfall, the city shows another face.",
            "time lapse of traffic light trails and crowds in {subject} at dusk",
        ),
    ),
    climax=_beat(
        C.WIDE_SHOT,
        "旅行者站在观景台上，{topic}的夜景在脚下璀璨铺开 | 旅行者举起相机，定格这一刻 | "
        "就是这一眼，让所有的路途都值得。",
        "From an observation deck, the {topic} glitters at night below the traveler "
        "| The traveler raises a camera to capture the moment | "
        "This one view makes every mile worth it.",
        "traveler on an observation deck overlooking glittering {subject} at night",
    ),
    ending=_beat(
        C.PANNING_SHOT,
        "深夜的街头渐渐安静，旅行者的背影消失在街角 | 镜头缓缓摇向远处的灯火 | "
        "下一次，{topic}还会有新的故事。",
        "Late at night the street grows quiet; the traveler disappears around a corner "
        "| The camera pans slowly to the distant lights | "
        "Next time, the {topic} will have a new story.",
        "quiet late night street in {subject}, traveler walking away, slow pan to city lights",
    ),
)

FOOD = Genre(
    name="food",
    cues=(
        "美食",
        "吃",
        "菜",
        "烹饪",
        "做饭",
        "厨",
        "火锅",
        "面",
        "小吃",
        "咖啡",
        "茶",
        "甜品",
        "蛋糕",
        "烘焙",
        "烧烤",
        "早餐",
        "餐厅",
        "食谱",
        "味",
        "food",
        "cook",
        "recipe",
        "dish",
        "kitchen",
        "chef",
        "coffee",
        "tea",
        "dessert",
        "cake",
        "bake",
        "bread",
        "noodle",
        "ramen",
        "sushi",
        "breakfast",
        "restaurant",
        "eat",
        "eating",
        "baking",
        "taste",
        "barbecue",
        "bbq",
        "pizza",
        "burger",
    ),
    subject_en="a delicious dish",
    topic_zh="美食",
    titles=("{topic}的美味时光", "{topic}: A Taste Story"),
    default_style="cinematic",
    opening=_beat(
        C.HIGH_ANGLE,
        "俯拍整齐摆放的新鲜食材，色彩鲜亮 | 一双手把食材逐一排开 | 一道好味道，从挑选食材开始。",
        "Overhead view of fresh ingredients neatly laid out in bright colors "
        "| Hands arrange the ingredients one by one | Great flavor starts with choosing well.",
        "top-down flat lay of fresh ingredients for {subject} on a wooden table",
    ),
    development=(
        _beat(
            C.CLOSE_UP,
            "刀起刀落，{detail}被切成均匀的片 | 厨师熟练地切配食材 | 刀工里，藏着对味道的耐心。",
            "The knife rises and falls as {detail} is cut into even slices "
            "| The chef preps ingredients with practiced hands | Patience shows in every cut.",
            "close up of a chef's knife slicing ingredients for {subject}, cutting board",
        ),
        _beat(
            C.EXTREME_CLOSE_UP,
            "热油在锅中翻滚，香料下锅的瞬间腾起白烟 | 食材入锅，滋滋作响 | "
            "听，这是味道开始的声音。",
            "Hot oil shimmers and spices hit the pan in a burst of steam "
            "| Ingredients sizzle as they go in | Listen: that's the sound of flavor beginning.",
            "extreme close up of sizzling oil and spices in a wok, steam rising, {subject}",
        ),
        _beat(
            C.MEDIUM_SHOT,
            "厨师颠勺翻炒，火焰在锅边跳动 | 厨师手腕一抖，食材在空中翻转 | "
            "火候，是厨房里最难的功夫。",
            "The chef tosses the pan as flames leap along its edge "
            "| With a flick of the wrist, the food flips in the air "
            "| Heat control is the hardest skill in any kitchen.",
            "chef tossing food in a flaming wok, kitchen, cooking {subject}",
        ),
        _beat(
            C.TIME_LAPSE,
            "锅中汤汁慢慢收浓，颜色越来越诱人 | 汤汁咕嘟冒泡 | 时间，是最后一味调料。",
            "The sauce slowly thickens and deepens in color "
            "| The pot bubbles gently | Time is the final seasoning.",
            "time lapse of a sauce simmering and reducing in a pot, {subject}",
        ),
        _beat(
            C.CLOSE_UP,
            "{detail}被精心摆盘，点缀上最后一片香草 | 镊子轻轻放下装饰 | 好看，也是一种好吃。",
            "{detail} is plated with care and finished with a final herb leaf "
            "| Tweezers set down the garnish | Looking good is part of tasting good.",
            "close up of careful plating of {subject}, garnish, restaurant presentation",
        ),
    ),
    climax=_beat(
        C.EXTREME_CLOSE_UP,
        "{topic}上桌，热气升腾，第一口咬下的瞬间 | 食客闭上眼睛细细品味 | "
        "就是这一口，值得所有等待。",
        "The {topic} arrives steaming, and the first bite lands "
        "| The diner closes their eyes to savor it | This one bite is worth all the waiting.",
        "extreme close up of the first bite of {subject}, steam rising, mouthwatering",
    ),
    ending=_beat(
        C.WIDE_SHOT,
        "朋友们围坐一桌，举杯谈笑，灯光温暖 | 大家碰杯，笑声不断 | "
        "最好的味道，是和喜欢的人一起分享。",
        "Friends gather around the table, laughing and raising glasses in warm light "
        "| Glasses clink and laughter fills the room | The best flavor is the one you share.",
        "friends sharing {subject} around a dinner table, warm light, laughing",
    ),
)

PRODUCT = Genre(
    name="product",
    cues=(
        "产品",
        "新款",
        "发布",
        "品牌",
        "手机",
        "手表",
        "耳机",
        "电脑",
        "相机",
        "汽车",
        "香水",
        "护肤",
        "口红",
        "运动鞋",
        "宣传片",
        "广告",
        "上市",
        "智能",
        "product",
        "launch",
        "brand",
        "phone",
        "smartphone",
        "watch",
        "smartwatch",
        "headphone",
        "earbud",
        "laptop",
        "camera",
        "car",
        "perfume",
        "skincare",
        "sneaker",
        "gadget",
        "device",
        "advert",
        "promo",
        "unbox",
    ),
    subject_en="a sleek new product",
    topic_zh="新品",
    titles=("{topic}：焕新登场", "{topic}: Made for You"),
    default_style="commercial",
    opening=_beat(
        C.EXTREME_CLOSE_UP,
        "黑暗中一道光划过，勾勒出{topic}的轮廓 | 光线沿着边缘缓缓移动 | 有些东西，一眼就不一样。",
        "In darkness, a sweep of light traces the outline of the {topic} "
        "| Light glides slowly along its edges | Some things are different at first sight.",
        "extreme close up of {subject} silhouette revealed by a sweeping light in darkness",
    ),
    development=(
        _beat(
            C.TRACKING_SHOT,
            "{topic}在转台上缓缓旋转，展示每一处线条 | 镜头环绕产品一周 | "
            "每一条线，都经过反复打磨。",
            "The {topic} turns slowly on a turntable, showing every line "
            "| The camera circles the product | Every curve has been refined again and again.",
            "{subject} rotating on a turntable, orbiting camera, studio lighting",
        ),
        _beat(
            C.CLOSE_UP,
            "特写{detail}：材质、按键与精致的细节 | 手指轻触表面 | 细节，决定了品质。",
            "Close on {detail}: materials, buttons and precise finishing "
            "| A fingertip brushes the surface | Quality lives in the details.",
            "close up of material texture and fine details of {subject}, product macro",
        ),
        _beat(
            C.MEDIUM_SHOT,
            "年轻人在通勤路上自然地使用{topic} | 用户抬手操作，露出微笑 | 它融入你的每一天。",
            "A young commuter uses the {topic} naturally on the way to work "
            "| A quick tap and a smile | It fits right into your day.",
            "young professional using {subject} on a morning commute, lifestyle",
        ),
        _beat(
            C.POINT_OF_VIEW,
            "第一人称视角体验{detail}，界面流畅响应 | 手指滑动，功能一一展开 | "
            "简单，是最难做到的高级。",
            "A first-person look at {detail}, responding instantly "
            "| A swipe, and the features unfold | Simple is the hardest kind of sophisticated.",
            "point of view hands using {subject}, smooth interface, features demo",
        ),
        _beat(
            C.PANNING_SHOT,
            "不同场景快速切换：办公室、健身房、户外，{topic}始终相伴 | 用户在不同场景中切换 | "
            "无论去哪里，它都在。",
            "Quick cuts across office, gym and outdoors, the {topic} always along "
            "| The user moves from scene to scene | Wherever you go, it goes too.",
            "montage of {subject} used in office, gym and outdoors, panning",
        ),
    ),
    climax=_beat(
        C.LOW_ANGLE,
        "{topic}在光芒中定格，品牌标志缓缓浮现 | 产品悬浮于画面中央，光效四射 | 这一刻，焕新登场。",
        "The {topic} freezes in a burst of light as the brand mark appears "
        "| The product floats at the center of the frame | Now, meet the new standard.",
        "hero shot of {subject} floating in dramatic light, low angle, logo reveal",
    ),
    ending=_beat(
        C.MEDIUM_SHOT,
        "产品静置于简洁背景，旁边出现上市信息 | 画面定格，文字淡入 | 现在，就把它带回家。",
        "The product rests on a clean background as the launch details appear "
        "| The frame holds and text fades in | Take it home today.",
        "{subject} on a clean minimal background, copy space for launch text",
    ),
)

EDUCATION = Genre(
    name="education",
    cues=(
        "科普",
        "原理",
        "讲解",
        "解释",
        "教程",
        "知识",
        "如何",
        "为什么",
        "怎么",
        "学习",
        "科学",
        "历史",
        "宇宙",
        "太空",
        "细胞",
        "光合作用",
        "物理",
        "化学",
        "数学",
        "人工智能",
        "编程",
        "环保",
        "气候",
        "explain",
        "how",
        "why",
        "tutorial",
        "learn",
        "lesson",
        "science",
        "history",
        "physics",
        "chemistry",
        "math",
        "biology",
        "photosynth",
        "universe",
        "space",
        "planet",
        "climate",
        "guide",
        "introduc",
        "basics",
        "artificial",
        "intelligence",
        "programming",
        "coding",
    ),
    subject_en="a fascinating science concept",
    topic_zh="这个知识点",
    titles=("一分钟看懂{topic}", "{topic}, Explained"),
    default_style="documentary",
    opening=_beat(
        C.MEDIUM_SHOT,
        "主持人站在简洁的背景前，抛出一个问题：{topic}到底是什么？ | 主持人向镜头发问 | "
        "你有没有想过，{topic}是怎么回事？",
        "A host in front of a clean backdrop asks: what exactly is {topic}? "
        "| The host asks the camera a question | Have you ever wondered how {topic} works?",
        "presenter asking a question in a bright studio, curious expression, {subject}",
    ),
    development=(
        _beat(
            C.CLOSE_UP,
            "动态图示出现，{detail}被拆解成几个简单的部分 | 图形逐一亮起并标注 | "
            "先把它拆开，一块一块地看。",
            "An animated diagram breaks {detail} into a few simple parts "
            "| Shapes light up one by one with labels | First, take it apart, piece by piece.",
            "clean animated infographic diagram explaining {subject}, labeled parts",
        ),
        _beat(
            C.WIDE_SHOT,
            "真实世界中的例子：{topic}就发生在我们身边 | 镜头切到日常场景 | "
            "其实，它一直就在你身边。",
            "A real-world example: {topic} is happening all around us "
            "| The camera cuts to an everyday scene | In fact, it has been around you all along.",
            "real world everyday scene illustrating {subject}, natural light",
        ),
        _beat(
            C.EXTREME_CLOSE_UP,
            "微观视角放大，{detail}的过程清晰可见 | 画面不断放大，进入细节 | "
            "放大一千倍，答案就在这里。",
            "A microscopic zoom shows {detail} step by step "
            "| The image zooms deeper into the detail | "
            "Zoom in a thousand times, and there is the answer.",
            "extreme close up microscopic view of {subject}, scientific visualization",
        ),
        _beat(
            C.MEDIUM_SHOT,
            "主持人用一个简单的小实验演示关键步骤 | 主持人动手操作，结果出现 | "
            "动手试一试，道理一下就清楚了。",
            "The host runs a simple experiment to demonstrate the key step "
            "| Hands at work, and the result appears | "
            "Try it yourself, and it suddenly makes sense.",
            "presenter doing a simple tabletop experiment demonstrating {subject}",
        ),
        _beat(
            C.TIME_LAPSE,
            "延时画面展示这一过程如何随时间展开 | 变化在几秒内完成 | 把时间加速，变化就看得见了。",
            "A time lapse shows how the process unfolds over time "
            "| Hours of change pass in seconds | Speed up time, and the change becomes visible.",
            "time lapse showing the process of {subject} unfolding",
        ),
    ),
    climax=_beat(
        C.AERIAL_VIEW,
        "画面拉远到宏观视角，{topic}与整个世界联系在一起 | 镜头不断拉远，全景呈现 | "
        "原来，{topic}关系着我们每一个人。",
        "The view pulls back to the big picture, connecting {topic} to the whole world "
        "| The camera keeps pulling out to a full panorama | So {topic} touches every one of us.",
        "aerial pull back revealing the big picture of {subject}, planet scale",
    ),
    ending=_beat(
        C.MEDIUM_SHOT,
        "主持人总结三个要点，屏幕上出现知识卡片 | 主持人微笑点头，卡片依次出现 | "
        "记住这三点，你就懂了{topic}。",
        "The host sums up three key points as knowledge cards appear on screen "
        "| The host smiles as the cards appear one by one "
        "| Remember these three points, and you understand {topic}.",
        "presenter summarizing key points with on-screen cards, clean studio, {subject}",
    ),
)

STORY = Genre(
    name="story",
    cues=(
        "故事",
        "爱情",
        "友情",
        "梦想",
        "成长",
        "青春",
        "回忆",
        "毕业",
        "重逢",
        "离别",
        "励志",
        "少年",
        "少女",
        "母亲",
        "父亲",
        "家人",
        "亲情",
        "剧情",
        "微电影",
        "story",
        "love",
        "friend",
        "dream",
        "memor",
        "graduat",
        "reunion",
        "farewell",
        "mother",
        "father",
        "family",
        "drama",
        "tale",
        "romance",
        "hero",
    ),
    subject_en="a heartfelt human story",
    topic_zh="一个故事",
    titles=("{topic}", "{topic}"),
    default_style="cinematic",
    opening=_beat(
        C.WIDE_SHOT,
        "安静的清晨，主人公独自站在窗前，若有所思 | 主人公望向窗外，轻轻叹气 | "
        "每个人心里，都有一个关于{topic}的故事。",
        "A quiet morning; the protagonist stands alone at a window, lost in thought "
        "| They look outside and sigh softly | Everyone carries a story about {topic}.",
        "protagonist standing alone by a window at dawn, contemplative, {subject}",
    ),
    development=(
        _beat(
            C.CLOSE_UP,
            "主人公翻看一张旧照片，{detail}的回忆涌上心头 | 手指轻抚照片边缘 | "
            "有些记忆，从来没有褪色。",
            "The protagonist studies an old photo as memories of {detail} return "
            "| A finger traces the photo's edge | Some memories never fade.",
            "close up of hands holding an old photograph, nostalgic mood, {subject}",
        ),
        _beat(
            C.TRACKING_SHOT,
            "主人公穿过人群奔跑，追赶即将离开的人 | 主人公拼命奔跑，气喘吁吁 | "
            "如果现在不追，就再也来不及了。",
            "The protagonist runs through the crowd, chasing someone about to leave "
            "| Running hard, out of breath | If not now, it will be too late.",
            "protagonist running through a crowd, following camera, urgent, {subject}",
        ),
        _beat(
            C.MEDIUM_SHOT,
            "挫折来临：主人公坐在台阶上，身边空无一人 | 主人公低下头，攥紧拳头 | "
            "最难的时候，往往只剩自己。",
            "A setback: the protagonist sits alone on the steps "
            "| Head down, fists clenched | In the hardest moments, you are often on your own.",
            "protagonist sitting alone on steps at dusk, melancholy, {subject}",
        ),
        _beat(
            C.POINT_OF_VIEW,
            "一只手伸向主人公，{detail}让一切出现转机 | 主人公抬头，握住那只手 | "
            "原来，一直有人在身边。",
            "A hand reaches out, and {detail} turns everything around "
            "| The protagonist looks up and takes it | Someone was there all along.",
            "point of view of a helping hand reaching out, warm light, {subject}",
        ),
        _beat(
            C.HIGH_ANGLE,
            "主人公重新振作，日复一日地坚持练习 | 主人公一次次尝试，汗水滴落 | "
            "一次又一次，直到不再害怕。",
            "The protagonist gets back up and keeps practicing day after day "
            "| Trying again and again, sweat falling | Again and again, until fear is gone.",
            "montage of protagonist practicing persistently, high angle, {subject}",
        ),
    ),
    climax=_beat(
        C.LOW_ANGLE,
        "关键时刻，主人公站上舞台中央，灯光亮起 | 主人公深吸一口气，迈出那一步 | "
        "就是现在，勇敢一次。",
        "The decisive moment: the protagonist steps into the spotlight "
        "| A deep breath, then the step forward | This is it: be brave, just once.",
        "protagonist stepping into a spotlight, low angle, emotional climax, {subject}",
    ),
    ending=_beat(
        C.WIDE_SHOT,
        "夕阳下，主人公与重要的人并肩走远 | 两人相视一笑，身影渐渐模糊 | "
        "故事还在继续，而{topic}会一直在心里。",
        "At sunset, the protagonist walks away side by side with someone who matters "
        "| They share a smile as their figures blur | "
        "The story goes on, and {topic} stays in the heart.",
        "two people walking away side by side at sunset, silhouettes, {subject}",
    ),
)

SPORTS = Genre(
    name="sports",
    cues=(
        "运动",
        "篮球",
        "足球",
        "跑步",
        "马拉松",
        "健身",
        "游泳",
        "滑雪",
        "冲浪",
        "骑行",
        "网球",
        "比赛",
        "冠军",
        "训练",
        "瑜伽",
        "攀岩",
        "拳击",
        "球赛",
        "球场",
        "赛跑",
        "sport",
        "basketball",
        "football",
        "soccer",
        "running",
        "marathon",
        "fitness",
        "gym",
        "swim",
        "ski",
        "surf",
        "cycling",
        "tennis",
        "match",
        "champion",
        "training",
        "workout",
        "yoga",
        "climbing",
        "boxing",
        "race",
        "racing",
        "skiing",
        "athlete",
    ),
    subject_en="an athlete in action",
    topic_zh="运动",
    titles=("{topic}：热血时刻", "{topic}: Beyond the Limit"),
    default_style="epic",
    opening=_beat(
        C.WIDE_SHOT,
        "天还没亮，空旷的场地上只有一个身影在热身 | 运动员系紧鞋带，活动筋骨 | "
        "所有的荣耀，都始于无人看见的清晨。",
        "Before dawn, a lone figure warms up in an empty arena "
        "| The athlete laces up and stretches | Every glory starts on a morning no one sees.",
        "lone athlete warming up in an empty stadium before dawn, {subject}",
    ),
    development=(
        _beat(
            C.CLOSE_UP,
            "特写{detail}：汗水、紧握的手和专注的眼神 | 汗珠从额头滑落 | 汗水不会说谎。",
            "Close on {detail}: sweat, gripping hands and focused eyes "
            "| A bead of sweat rolls down | Sweat never lies.",
            "close up of athlete's focused eyes and sweat, {subject}, intense",
        ),
        _beat(
            C.TRACKING_SHOT,
            "高强度训练：冲刺、跳跃、一遍遍重复 | 运动员全力冲刺，镜头紧紧跟随 | "
            "更快一点，再快一点。",
            "High-intensity training: sprints, jumps, reps on repeat "
            "| The athlete sprints as the camera follows close | Faster. Then faster again.",
            "tracking shot of athlete sprinting during training, motion blur, {subject}",
        ),
        _beat(
            C.HIGH_ANGLE,
            "比赛开始，场上双方激烈对抗，{detail}成为焦点 | 双方你来我往，互不相让 | "
            "真正的对手，让你成为更好的自己。",
            "The match begins, a fierce contest with {detail} at its center "
            "| Neither side gives an inch | A real rival makes you better.",
            "high angle view of intense competition, {subject}, stadium crowd",
        ),
        _beat(
            C.EXTREME_CLOSE_UP,
            "慢动作：肌肉绷紧、脚尖发力的一瞬间 | 动作被放慢到极致 | "
            "那一刻，所有训练都凝成一个动作。",
            "Slow motion: muscles tense as the push-off begins "
            "| The movement slows to the extreme | "
            "In that instant, all the training becomes one move.",
            "extreme close up slow motion of muscles and footwork, {subject}",
        ),
        _beat(
            C.MEDIUM_SHOT,
            "比分落后，运动员低头喘息，教练在场边呐喊 | 运动员擦去汗水，重新站起 | "
            "落后不可怕，放弃才可怕。",
            "Behind on the scoreboard, the athlete catches their breath as the coach shouts "
            "| They wipe away the sweat and stand tall | Falling behind is fine. Quitting is not.",
            "exhausted athlete catching breath, coach shouting from sideline, {subject}",
        ),
    ),
    climax=_beat(
        C.LOW_ANGLE,
        "决胜一刻！运动员奋力一搏，全场沸腾 | 运动员冲过终点、高举双臂 | 这就是{topic}的意义。",
        "The decisive moment! One all-out effort and the crowd erupts "
        "| The athlete breaks through and raises both arms | This is what {topic} is all about.",
        "low angle of athlete celebrating victory, arms raised, crowd roaring, {subject}",
    ),
    ending=_beat(
        C.AERIAL_VIEW,
        "人群散去，运动员独自坐在场边，望着空旷的赛场 | 镜头缓缓升起 | 明天，再出发。",
        "The crowd is gone; the athlete sits alone looking over the empty arena "
        "| The camera slowly rises | Tomorrow, we go again.",
        "aerial view rising above an empty stadium, lone athlete sitting, {subject}",
    ),
)

ANIMALS = Genre(
    name="animals",
    cues=(
        "猫",
        "狗",
        "宠物",
        "熊猫",
        "动物",
        "鸟",
        "鲸",
        "老虎",
        "狮子",
        "鹿",
        "兔",
        "萌宠",
        "cat",
        "kitten",
        "dog",
        "puppy",
        "pet",
        "panda",
        "animal",
        "bird",
        "whale",
        "tiger",
        "lion",
        "deer",
        "rabbit",
        "wildlife",
    ),
    subject_en="an adorable animal",
    topic_zh="小动物",
    titles=("{topic}的奇妙日常", "{topic}: A Little Wild World"),
    default_style="documentary",
    opening=_beat(
        C.CLOSE_UP,
        "阳光洒进来，{topic}慢慢睁开眼睛，伸了个懒腰 | {topic}打了个大大的哈欠 | "
        "新的一天，从一个懒腰开始。",
        "Sunlight pours in as the {topic} slowly opens its eyes and stretches "
        "| A huge yawn | A new day begins with a big stretch.",
        "close up of {subject} waking up and stretching in morning sunlight",
    ),
    development=(
        _beat(
            C.TRACKING_SHOT,
            "{topic}好奇地四处探索，东闻闻西看看 | 镜头跟随它的小脚步 | 世界那么大，什么都想看看。",
            "The {topic} explores with curiosity, sniffing everything "
            "| The camera follows its little steps | Such a big world, and everything to see.",
            "tracking shot following curious {subject} exploring, low to the ground",
        ),
        _beat(
            C.EXTREME_CLOSE_UP,
            "特写{detail}：毛发、胡须和湿润的鼻尖 | 鼻尖轻轻抽动 | 每一根毛发，都写着可爱。",
            "Close on {detail}: fur, whiskers and a damp little nose "
            "| The nose twitches | Every whisker says adorable.",
            "extreme close up of fur, whiskers and nose of {subject}, soft focus",
        ),
        _beat(
            C.MEDIUM_SHOT,
            "{topic}扑向玩具，结果摔了个跟头 | 它爬起来，假装什么都没发生 | 失误？不存在的。",
            "The {topic} pounces on a toy and tumbles over "
            "| It gets up as if nothing happened | A mistake? Never heard of it.",
            "{subject} pouncing playfully and tumbling, funny moment",
        ),
        _beat(
            C.LOW_ANGLE,
            "低角度下，{topic}像巨人一样昂首走过 | 它骄傲地迈着步子 | 在它的世界里，它就是国王。",
            "From ground level, the {topic} struts past like a giant "
            "| It marches proudly | In its world, it is the king.",
            "low angle of {subject} walking proudly toward camera",
        ),
        _beat(
            C.HIGH_ANGLE,
            "{topic}和伙伴们追逐打闹，玩成一团 | 它们你追我赶 | 快乐，就是这么简单。",
            "The {topic} chases and tumbles with its friends "
            "| They race after each other | Happiness really is this simple.",
            "high angle of {subject} playing together with friends",
        ),
    ),
    climax=_beat(
        C.CLOSE_UP,
        "{topic}跳进主人怀里，蹭来蹭去 | 主人笑着抱紧它 | 被需要的感觉，真好。",
        "The {topic} leaps into its owner's arms and nuzzles in "
        "| The owner laughs and holds it tight | It feels good to be loved.",
        "close up of {subject} nuzzling into owner's arms, warm light, heartwarming",
    ),
    ending=_beat(
        C.WIDE_SHOT,
        "夕阳下，{topic}蜷成一团安然入睡 | 呼吸均匀，尾巴轻摆 | 晚安，明天见。",
        "At sunset, the {topic} curls up and falls asleep "
        "| Breathing slowly, tail swaying | Good night. See you tomorrow.",
        "{subject} curled up asleep in golden sunset light, peaceful",
    ),
)

GENERAL = Genre(
    name="general",
    cues=(),
    subject_en="the main subject",
    topic_zh="这个主题",
    titles=("{topic}", "{topic}"),
    default_style="cinematic",
    opening=_beat(
        C.WIDE_SHOT,
        "开场全景：{topic}的世界在眼前展开 | 镜头缓缓推进 | 今天，我们从这里开始认识{topic}。",
        "Opening wide: the world of {topic} unfolds "
        "| The camera pushes in slowly | Today, our look at {topic} starts here.",
        "establishing wide shot introducing {subject}, atmospheric light",
    ),
    development=(
        _beat(
            C.MEDIUM_SHOT,
            "人们与{topic}的日常相遇，自然而真实 | 人物走入画面，开始互动 | 它就在我们的生活里。",
            "People meet {topic} in everyday life, natural and real "
            "| Someone steps into frame and engages | It is part of our lives.",
            "people interacting with {subject} in everyday life, natural light",
        ),
        _beat(
            C.CLOSE_UP,
            "特写{detail}：那些容易被忽略的细节 | 镜头缓缓扫过细节 | 真正打动人的，往往是细节。",
            "Close on {detail}: details that are easy to miss "
            "| The camera glides across them | What moves us is often in the details.",
            "close up details of {subject}, textures, shallow depth of field",
        ),
        _beat(
            C.TRACKING_SHOT,
            "镜头跟随主角穿行其中，展现{topic}的不同侧面 | 主角一路前行 | "
            "换一个角度，就有新的发现。",
            "The camera follows the lead through it, showing different sides of {topic} "
            "| The lead keeps moving | A new angle brings a new discovery.",
            "tracking shot following a person exploring {subject}",
        ),
        _beat(
            C.TIME_LAPSE,
            "延时画面：从白天到夜晚，{topic}不停变化 | 光影快速流转 | 时间让一切变得不同。",
            "Time lapse from day to night as {topic} keeps changing "
            "| Light flows quickly across the frame | Time changes everything.",
            "time lapse of {subject} from day to night",
        ),
        _beat(
            C.PANNING_SHOT,
            "镜头横摇，{detail}与周围环境连成一体 | 画面从一端摇到另一端 | 一切都彼此相连。",
            "A slow pan links {detail} with everything around it "
            "| The frame sweeps from one side to the other | Everything is connected.",
            "slow panning shot across {subject} and its surroundings",
        ),
    ),
    climax=_beat(
        C.LOW_ANGLE,
        "高潮：{topic}最动人的一刻，光线与情绪同时到达顶点 | 主角停下脚步，凝视前方 | "
        "这一刻，值得被记住。",
        "The high point: the most moving moment of {topic}, light and emotion peaking together "
        "| The lead stops and gazes ahead | This moment deserves to be remembered.",
        "dramatic low angle hero shot of {subject}, golden light, emotional peak",
    ),
    ending=_beat(
        C.AERIAL_VIEW,
        "镜头升起，{topic}在画面中渐渐变小，字幕浮现 | 画面淡出 | 关于{topic}，故事未完待续。",
        "The camera rises as {topic} grows small in the frame and the titles appear "
        "| Fade out | The story of {topic} is still being written.",
        "aerial view rising away from {subject}, fade out, closing shot",
    ),
)

GENRES: tuple[Genre, ...] = (
    FOOD,
    PRODUCT,
    EDUCATION,
    SPORTS,
    ANIMALS,
    STORY,
    TRAVEL,
    NATURE,
    GENERAL,
)

# Extra angles that keep long scripts' repeated development beats distinct.
VARIATIONS: tuple[tuple[str, str, str], ...] = (
    ("，换一个角度再看", ", seen from another angle", "from a different angle"),
    ("，黄昏时分", ", at dusk", "at dusk, warm orange light"),
    ("，细雨之中", ", in light rain", "in light rain, wet reflections"),
    ("，夜色降临", ", as night falls", "at night, moody lighting"),
    ("，慢动作呈现", ", in slow motion", "slow motion"),
    ("，逆光剪影", ", silhouetted against the light", "backlit silhouette"),
    ("，清晨薄雾中", ", in the morning mist", "morning mist, soft light"),
    ("，透过前景的枝叶", ", framed through foreground leaves", "framed through foreground foliage"),
)
