"""The few hundred Han characters that most Chinese text is written with, simplified and
traditional: data for `text_decoding`, which decides between GBK and Big5 by which reading
of a file's bytes gives more of them (the wrong reading gives rare characters, symbols and
kana). The import page gets the same string (bridges/contacts/api/pages.py `page_rules`),
so the bot and the page cannot decide differently.

The list is the most frequent characters of modern written Chinese, the words of
address-book and catalog exports (姓名, 手机/手機, 电话/電話, 邮箱/郵箱, 价格/價格…) and the
commonest family names. Order carries no meaning.
"""

from __future__ import annotations

_SIMPLIFIED = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下"
    "自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部"
    "其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又"
    "关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯"
    "月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入"
    "几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管"
    "期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像"
    "难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今"
    "切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令"
    "准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚"
    "请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早"
    "曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽"
    "推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴"
    "例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀"
    # address books and catalogs
    "姓号码移邮箱址址联系备注微信职单位街省县镇编网站店铺价格库存货币标题描述图片类别数量"
    "商品规颜尺寸售销茶杯衣鞋包手表书饮食"
    # family names
    "吴赵孙杨朱胡郭何高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃"
    "武戴莫孔向汤林刘王伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华文玲建国志"
)

# The traditional form of each simplified character above that differs, in pairs.
_TRADITIONAL_PAIRS = (
    "这這个個们們来來为為国國说說时時会會对對过過发發后後里裡动動战戰头頭体體见見么麼经經"
    "还還进進样樣开開无無与與长長机機实實军軍种種业業将將两兩问問间間现現当當没沒从從关關"
    "点點应應产產话話门門东東声聲员員几幾认認条條系係气氣题題尔爾别別变變总總电電数數报報"
    "结結务務场場计計书書听聽达達强強难難权權觉覺术術领領确確传傳师師观觀让讓识識带帶导導"
    "争爭运運飞飛风風干幹联聯组組济濟车車亲親极極办辦议議证證转轉准準单單罗羅爱愛击擊备備"
    "连連调調团團党黨华華级級离離况況亚亞请請际際约約复復线線断斷满滿视視须須写寫称稱吗嗎"
    "历歷医醫专專费費号號尽盡较較语語仅僅众眾维維划劃敌敵陈陳态態护護兴興验驗责責够夠终終"
    "紧緊黄黃绝絕举舉杀殺纪紀织織采採项項边邊张張该該规規万萬则則队隊统統区區许許资資论論"
    "处處义義质質价價标標谈談图圖随隨选選红紅响響虽雖势勢参參构構节節严嚴续續讲講围圍斗鬥"
    "双雙学學记記设設类類据據广廣显顯农農轻輕装裝远遠马馬决決儿兒并並着著于於给給诉訴台臺"
    "码碼邮郵联聯络絡机機职職编編网網铺鋪库庫货貨币幣题題图圖别別数數销銷饮飲表錶"
    "吴吳赵趙孙孫杨楊郑鄭谢謝韩韓冯馮邓鄧肖蕭蒋蔣苏蘇吕呂卢盧钟鍾谭譚"
    "陆陸贾賈韦韋邹鄒闫閆龙龍贺賀顾顧龚龔钱錢刘劉伟偉丽麗军軍艳艷杰傑涛濤刚剛华華"
    "颜顏"
)

_TRADITIONAL = dict(zip(_TRADITIONAL_PAIRS[0::2], _TRADITIONAL_PAIRS[1::2], strict=True))

COMMON_HAN = "".join(sorted({*_SIMPLIFIED, *_TRADITIONAL.values()}))
