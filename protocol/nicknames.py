"""Given-name equivalence groups: nicknames, short forms and spelling variants (English and Spanish).

Each line of :data:`_GROUPS` is one group: the formal name first, then the names that stand for it. Two
names are *equivalent* when some group holds both, so the relation is symmetric by construction but not
transitive: "Chris" is short for Christopher and for Christina, which are not each other. Names are
folded (lowercase ASCII letters, accents stripped, spaces and hyphens removed: "María José" is
``mariajose``) so callers fold with :func:`protocol.name_similarity.fold_compact` before looking up.

Sources: common English hypocorisms (William/Bill, Margaret/Peggy) and the Spanish ones schools see
every day (José/Pepe, Francisco/Paco/Pancho, Guadalupe/Lupe, Jesús/Chuy), plus the cross-language pairs
a name often crosses with a transfer (Guillermo/William, Roberto/Robert). Spelling variants that a
one-letter comparison already catches (Jon/John) are left out; the ones it misses are kept
(Stephen/Steven, Sofia/Sophia, Jimena/Ximena).
"""

from __future__ import annotations

from types import MappingProxyType

_GROUPS = """
aaron ron ronnie
abigail abby abbie abbey gail
abraham abe bram
adelaide addie addy
adrian adrien
agnes aggie
albert al bert bertie
alberto beto al albert
alejandra ale alex jandra sandra
alejandro alex ale jandro alexander
alexander alex alec alexis xander sandy lex al zander
alexandra alex alexa lexi lexie sandra sandy alexis
alfonso poncho fonso
alfred al alfie fred freddie
alfredo fredo freddy alfred
alicia ali licha
alison allison allie ally ali
allan alan allen al
amanda mandy manda
amelia amy millie mia
anastasia ana stacy stacey tasia
andrea andi andie
andres andy andrew
andrew andy drew
angela angie angel
angelica angie angel
ann anne annie anna nan nancy
anna ann anne annie ana
anthony tony ant antony
antonio tono toni tony nino anthony
arthur art artie
arturo arthur art turi
augustine gus austin
augustus gus
barbara barb barbie babs bobbie
beatrice bea trixie
beatriz bea betty
benjamin ben benji benny
bernadette bernie
bernard bernie barney
beverly bev
bradley brad
brandon bran
brian bryan
bridget biddy bridgie
calvin cal
camila cami mila
cameron cam
carlos carlitos charles
carmen carmencita mela
carol carole caroline carrie
caroline carol carrie caro carolina
cassandra cass cassie sandra
catalina cata cati
catherine cathy kate katie kathy cat cate katherine kathryn
cecilia ceci cece
charles charlie chuck chas chaz carlos
charlotte charlie lottie lotte
christian chris christy
christina chris christy tina crissy cristina
christine chris christy tina
christopher chris kit topher cristobal
cindy cynthia cyndi
clarence clare
claudia claudie
clifford cliff
concepcion concha conchita
cornelius neil corny
cristina cris tina christina
cristobal cris toba christopher
cynthia cindy cyndi
daniel dan danny dani
daniela dani daniella
david dave davey davy
deborah debbie deb debra
delores dolores lola
denise dee
dennis denny
diana di diane dianne
dolores lola lolita dolly
dominic dom nick
dominique dom
donald don donnie
dorothy dot dottie dolly dora
douglas doug
edith edie
edmund ed eddie ned
eduardo lalo eddie edu ed edward
edward ed eddie ted teddy ned eduardo
eleanor ellie nell nora elle elenor
elena lena nena helena
elias eli
elijah eli lijah
elisa lisa eli
elizabeth liz beth betsy eliza lizzie betty bess libby elsie lisa elisabeth isabel
ellen ellie nell
emanuel manny emmanuel manuel
emilia emily emmy mila
emiliano emi nano
emily em emmy millie
emma em emmy
enrique kike quique henry
ernest ernie
ernesto neto tito ernest
esmeralda esme
esperanza espe lancha
esteban steve stephen
eugene gene
eugenia genie gina
evangeline eva angie vangie
evelyn evie eve
ezekiel zeke
federico fede kiko fred
felicia fela fee
fernanda fer nanda
fernando fer nando
florence flo flossie
frances fran frannie francie francisca
francis frank frankie fran
francisca paca paquita frances pancha
francisco paco pancho curro frank cisco kiko
franklin frank
frederick fred freddie fritz
gabriel gabe gabo gabi
gabriela gaby gabi gabriella gabby ella
gabriella gabby gaby ella gabriela
genevieve gen genny
geoffrey jeff geoff jeffrey
gerald gerry jerry
gerardo jerry gera lalo
gertrude gertie trudy
gilbert gil bert
gilberto beto gil
gonzalo chalo gonza
gregory greg
guadalupe lupe lupita pita
guillermo memo guille willy william
gustavo tavo gus
harold harry hal
harriet hattie
helen nell ellie lena
henry hank harry hal enrique
herbert herb bert
horacio lacho
howard howie
humberto beto
ignacio nacho nachito
isaac ike
isabel isa chabela bel isabelle isabella elizabeth
isabella bella izzy isabel isabelle
isidro chilo
jacob jake jakob
jacqueline jackie jacky
james jim jimmy jamie jimbo diego
jane janie jenny
janet jan
javier javi
jeffrey jeff geoffrey
jennifer jen jenny jenn
jeremiah jerry
jeremy jerry
jerome jerry
jessica jess jessie
jesus chuy chucho chus
jimena ximena mena
joanna jo joanne
joaquin quino joaco
john jack johnny jon juan
jonathan jon jonny nathan
jorge coque george
jose pepe chepe pepito joe joseph
joseph joe joey jose
josephine jo josie
joshua josh
juan juanito john
juancarlos juanca
juanjose juanjo
judith judy
julia jules julie
julian jules
juliana juli
julio july jules
justin justine
katherine kathy kate katie kat kathryn kitty kay catherine
kathleen kathy kate katie kay
kenneth ken kenny
kimberly kim kimmy
kristen kristin kris kristy
laura laurie lori
lawrence larry laurence lorenzo
leonard leo len lenny leonardo
leonardo leo nardo leonard
leticia lety leti
lillian lily lil
lorenzo enzo lencho lawrence
louis lou louie luis
lucia lucy chia
luis lucho louis
luisa lucha louisa
lucille lucy lulu
lucas luke
madeline maddie maddy madeleine madelyn
magdalena magda malena nena
manuel manny manolo meme emanuel
marcos marc marcus mark
margaret maggie meg peggy marge madge greta maisie daisy margarita
margarita margie mague rita maggie margaret
maria mari marita mary
mariajose majo
mariana mari nana
mariano nano
maricela chela mari
mariela mari
marisol mari sol
martha marty mattie marta
martin marty tin
mary molly polly mae maria mamie
matthew matt matty mateo
mateo matt teo matthew
maurice mo moe
mauricio mau
maximiliano max maxi
maximilian max
maxwell max
megan meg meghan
melissa missy mel lisa
mercedes meche merce
michael mike mikey mick mickey miguel
michelle shelly micki
miguel migue mike michael
mildred millie
miriam mimi
mitchell mitch
monica moni
montserrat montse
nancy nan
natalia nati naty natalie
natalie nat natty natalia
nathan nate nat
nathaniel nate nathan nat
natividad nati naty
nicholas nick nicky nico colin
nicolas nico nick nicholas
nicole nikki nicky niki
octavio tavo
oliver ollie
olivia liv livvy livie
oscar ossie
pamela pam
pascual pasqui
patricia pat patty trish tricia patsy paty
patrick pat paddy patricio
patricio pato pat patrick
paula pauli
peter pete pedro
pedro perico pete peter
penelope penny
philip phil pip felipe phillip
phillip phil
pilar pili
porfirio pilo
rafael rafa rafi ralph
ramon moncho mon
randall randy
raymond ray
rebecca becky becca beckie
refugio cuca cuco
regina gina
reginald reggie reg
ricardo ricky richi rico richard
richard rick ricky dick rich richie ricardo
robert bob rob bobby robbie bert roberto
roberto beto rober tito robert
rocio chio
rodolfo rudy fito rodolph
rodrigo rodri rigo
ronald ron ronnie
rosalind ros roz
rosario chayo charo
rosemary rosie rose
ruben rube
russell russ
salvador chava salva sal
samantha sam sammy sami
samuel sam sammy
santiago santi chago
sara sarah sally sadie
sarah sally sadie sara
sebastian sebas seba bastian
sergio checo
silvia sylvia
socorro coco
sofia sophia sophie sofi
sophia sofia sophie
stanley stan
stephanie steph stephie stefanie
stephen steve stevie steven esteban
steven steve stevie stephen
susan sue suzy susie
susana susi
suzanne sue suzy
teresa tere terry tess tessa theresa
theodore ted teddy theo
thomas tom tommy tomas
timothy tim timmy
tomas tomasito tommy thomas
valentina vale tina
valeria vale
veronica ronnie vero
vicente chente vince
victor vic vicky
victoria vicky tori vicki
vincent vince vinny vicente
virginia ginny ginger
walter walt wally
wesley wes
william bill will billy liam willy willie wil guillermo
winifred winnie
yolanda yoli
zachary zach zack zac
""".strip().splitlines()


def _build() -> MappingProxyType[str, tuple[str, ...]]:
    heads: dict[str, list[str]] = {}
    for line in _GROUPS:
        head, *_ = names = line.split()
        for name in names:
            bucket = heads.setdefault(name, [])
            if head not in bucket:
                bucket.append(head)
    return MappingProxyType({name: tuple(sorted(groups)) for name, groups in heads.items()})


#: Folded name -> the formal names (group heads) of every group it belongs to.
NICKNAME_GROUPS: MappingProxyType[str, tuple[str, ...]] = _build()

#: Every group as a tuple, formal name first (for tests and for the roster generator).
GROUPS: tuple[tuple[str, ...], ...] = tuple(tuple(line.split()) for line in _GROUPS)


def groups_of(folded: str) -> tuple[str, ...]:
    """The formal names of the groups ``folded`` belongs to, sorted; () if it is in none."""
    return NICKNAME_GROUPS.get(folded, ())


def equivalent(a: str, b: str) -> bool:
    """True if two distinct folded names stand for the same given name in some group."""
    if a == b:
        return False
    groups_a = NICKNAME_GROUPS.get(a)
    if not groups_a:
        return False
    groups_b = NICKNAME_GROUPS.get(b)
    return groups_b is not None and not set(groups_a).isdisjoint(groups_b)


def formal_of(a: str, b: str) -> str | None:
    """Of two equivalent names, the one that heads a group holding the other (Bill, William -> William)."""
    if b in NICKNAME_GROUPS.get(a, ()) and b != a:
        return b
    if a in NICKNAME_GROUPS.get(b, ()) and a != b:
        return a
    return None
